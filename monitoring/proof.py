"""Proof against the real thing: a real Prometheus scrapes the real service on 127.0.0.1 under
load, then every recording rule, every alert's signal and every dashboard query is evaluated
through Prometheus' HTTP API. Any that errors or returns no series fails the run, so a renamed
metric or label breaks CI instead of a dashboard or a page at 3 a.m.

``python -m monitoring.proof [--bundles DIR] [--seconds 40] [--render docs/dashboard.png]``

The service runs with a small queue (INFER_MAX_QUEUE=2) and a short deadline
(INFER_REQUEST_TIMEOUT_S=1.5) so that overload is real: the 429, 504 and failure queries answer
with measured, non-zero series. Prometheus comes from Debian's ``prometheus`` package
(``PROMETHEUS=...`` overrides); it scrapes every second and evaluates the generated
``k8s/components/monitoring/rules.yaml`` every second. Writes ``prom_proof.json`` (every query,
its series count and a value) and Prometheus' log under ``--out`` (default ``reports/``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadtest.server import DEFAULT_BUNDLES, ROOT, free_port, launched, running_service
from monitoring import dashboard, rules
from monitoring.generate import OUT

RULES_FILE = OUT / "rules.yaml"
JOB = "nlp-inference"
OVERLOAD = {"INFER_MAX_QUEUE": "2", "INFER_REQUEST_TIMEOUT_S": "1.5", "INFER_LOG_LEVEL": "warning"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--seconds", type=float, default=40.0, help="traffic duration")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--render", type=Path, help="also draw the dashboard (PNG) from the data")
    return parser.parse_args()


@contextmanager
def running_prometheus(target: str, log: Path) -> Iterator[str]:
    """A throw-away Prometheus (tmp storage, 127.0.0.1) scraping ``target``; stopped by PID."""
    binary = os.environ.get("PROMETHEUS") or shutil.which("prometheus")
    if not binary:
        raise SystemExit("no prometheus binary: apt-get install -y prometheus (or PROMETHEUS=...)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="prom-proof-") as tmp:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [target]}],
                }
            ],
        }
        (Path(tmp) / "prometheus.yml").write_text(yaml.safe_dump(config))
        command = [
            binary,
            f"--config.file={tmp}/prometheus.yml",
            f"--storage.tsdb.path={tmp}/data",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        base = f"http://127.0.0.1:{port}"
        with launched(command, f"{base}/-/ready", "prometheus", log, ready_timeout=60):
            yield base


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_target(prometheus: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(prometheus, f'up{{job="{JOB}"}} == 1'):
            return
        time.sleep(0.5)
    raise SystemExit("prometheus never scraped the service successfully")


def drive(base: str, seconds: float, clients: int, models: dict[str, str]) -> Counter[str]:
    """NER utterances, posture documents and a few bad requests from ``clients`` threads."""
    from default_models import food_corpus, legal_corpus

    utterances = [
        e.text for e in food_corpus.generate_splits(n_train=1, n_dev=1, n_test=200)["test"]
    ]
    documents = [
        d.text for d in legal_corpus.generate_splits(n_train=1, n_validation=1, n_test=20)["test"]
    ]
    tasks = set(models.values())
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop_at:
                roll = rng.random()
                body: dict[str, object]
                if "postures" in tasks and (n % 2 or "ner" not in tasks):
                    route, body = "/v1/postures", {"text": rng.choice(documents)}
                elif roll < 0.05:
                    route, body = "/v1/entities", {"text": 42}  # 422
                else:
                    texts = rng.sample(utterances, rng.choice((1, 1, 1, 4)))
                    route, body = "/v1/entities", {"texts": texts}
                status = http.post(route, json=body).status_code
                with lock:
                    statuses[f"{route} {status}"] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def expressions() -> dict[str, str]:
    """Every recording rule (its recorded series and its expression), every alert's signal and
    every dashboard target, by a readable name."""
    found = rules.all_expressions()
    for panel in dashboard.PANELS:
        for i, target in enumerate(panel.targets):
            found[f"dashboard: {panel.title} [{i}]"] = dashboard.concrete(target.expr)
    return found


def check(prometheus: str) -> tuple[dict[str, Any], list[str]]:
    figures: dict[str, Any] = {}
    problems = []
    for name, expr in expressions().items():
        try:
            result = query(prometheus, expr)
        except (ValueError, httpx.HTTPError) as exc:
            problems.append(f"{name}: error {exc}")
            continue
        if not result:
            problems.append(f"{name}: no series ({expr})")
        figures[name] = {
            "expr": expr,
            "series": len(result),
            "example": result[0] if result else None,
        }
    unhealthy = [
        f"rule {r['name']}: {r.get('health')} {r.get('lastError', '')}"
        for group in httpx.get(f"{prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]
        for r in group["rules"]
        if r.get("health") != "ok"
    ]
    return figures, problems + unhealthy


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with running_service(args.bundles, args.out / "prom_proof_service.log", OVERLOAD) as service:
        target = service.base.removeprefix("http://")
        with running_prometheus(target, args.out / "prometheus.log") as prometheus:
            wait_for_target(prometheus)
            print(f"service {service.base} {service.models}; prometheus {prometheus}")
            statuses = drive(service.base, args.seconds, args.clients, service.models)
            print("traffic:", dict(sorted(statuses.items())))
            time.sleep(3)  # one more scrape and rule evaluation after the last request
            figures, problems = check(prometheus)
            if args.render:
                from monitoring.render import render

                render(prometheus, started, time.time(), args.render)
                print(f"dashboard drawn: {args.render}")
    report = {"traffic": statuses, "queries": figures, "problems": problems}
    (args.out / "prom_proof.json").write_text(json.dumps(report, indent=1, default=str))
    ok = len(figures) - len([p for p in problems if not p.startswith("rule ")])
    code = service.process.returncode
    print(f"{ok}/{len(expressions())} queries returned series; service exit status {code}")
    for problem in problems:
        print("FAILED", problem)
    return 1 if problems or service.process.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
