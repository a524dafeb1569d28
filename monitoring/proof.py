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

Model versions (``--versions``, the default): the service runs on a copy of the bundles in which
``ner-food`` has versions 1, 2 and 3 (the same weights, manifests renamed:
monitoring/versioned_bundles.py) with ``INFER_ROUTING`` sending 90 % of ``ner-food`` to 1, 10 % to
2 (canary) and a share of the requests also to 3 (shadow, with a small ``INFER_SHADOW_QUEUE``), and
``INFER_WATCH=true``: once it is ready, a version 4 with a wrong sha256 is published into the
watched directory (write, then rename), so the load-failure series is real too, and the
``InferModelLoadFailed`` alert must be firing for it at the end.
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
from monitoring.versioned_bundles import publish_version, versioned_bundles

RULES_FILE = OUT / "rules.yaml"
JOB = "nlp-inference"
OVERLOAD = {"INFER_MAX_QUEUE": "2", "INFER_REQUEST_TIMEOUT_S": "1.5", "INFER_LOG_LEVEL": "warning"}
VERSIONED = "ner-food"
ROUTING = {
    VERSIONED: {
        "weights": {"1": 90, "2": 10},
        "sticky_header": "x-caller-id",
        "shadow": {"version": "3", "fraction": 0.5},
    }
}
VERSIONS_ENV = {
    "INFER_ROUTING": json.dumps(ROUTING),
    "INFER_WATCH": "true",
    "INFER_WATCH_INTERVAL_S": "1",
    "INFER_SHADOW_QUEUE": "4",
}
REFUSED_VERSION = "4"  # published with a wrong sha256 once the service is ready
# ...which the real Prometheus must turn into a firing alert (the rules end to end).
REFUSED_ALERT = (
    f'ALERTS{{alertname="InferModelLoadFailed",alertstate="firing",model="{VERSIONED}",'
    f'version="{REFUSED_VERSION}",reason="sha256"}}'
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--seconds", type=float, default=40.0, help="traffic duration")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--render", type=Path, help="also draw the dashboard (PNG) from the data")
    parser.add_argument(
        "--versions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"serve {VERSIONED} as versions 1/2/3 with a 90/10 canary and a shadow (default)",
    )
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


def drive(
    base: str, seconds: float, clients: int, models: dict[str, str], versions: bool = False
) -> Counter[str]:
    """NER utterances, posture documents and a few bad requests from ``clients`` threads. With
    ``versions``, NER requests name ``ner-food`` (the routed version) with a fresh caller id each
    (so the sticky routing spreads them 90/10), and a few pin the canary (``ner-food@2``)."""
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
                headers = {}
                if versions and route == "/v1/entities":
                    body["model"] = f"{VERSIONED}@2" if roll > 0.97 else VERSIONED
                    headers["x-caller-id"] = f"caller-{n}-{rng.randrange(10**9)}"
                status = http.post(route, json=body, headers=headers).status_code
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


def wait_for_refusal(base: str, timeout: float = 120) -> bool:
    """True once /metrics counts the load failure of the published corrupt version."""
    marker = f'version="{REFUSED_VERSION}"'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        if any(
            line.startswith("infer_model_load_failures_total") and marker in line
            for line in text.splitlines()
        ):
            return True
        time.sleep(1)
    return False


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prom-proof-bundles-", dir=args.out) as tmp:
        bundles, env = args.bundles, dict(OVERLOAD)
        if args.versions:
            bundles = versioned_bundles(args.bundles, Path(tmp), VERSIONED, ("1", "2", "3"))
            env |= VERSIONS_ENV
        return run(args, bundles, env)


def run(args: argparse.Namespace, bundles: Path, env: dict[str, str]) -> int:
    started = time.time()
    late: list[str] = []
    with running_service(bundles, args.out / "prom_proof_service.log", env) as service:
        target = service.base.removeprefix("http://")
        with running_prometheus(target, args.out / "prometheus.log") as prometheus:
            wait_for_target(prometheus)
            print(f"service {service.base} {service.models}; prometheus {prometheus}")
            if args.versions:
                source = args.bundles / VERSIONED
                publish_version(source, bundles, VERSIONED, REFUSED_VERSION, corrupt_sha256=True)
                if not wait_for_refusal(service.base):
                    late.append(f"{VERSIONED}@{REFUSED_VERSION} (bad sha256): no load failure")
            statuses = drive(
                service.base, args.seconds, args.clients, service.models, args.versions
            )
            print("traffic:", dict(sorted(statuses.items())))
            time.sleep(3)  # one more scrape and rule evaluation after the last request
            figures, problems = check(prometheus)
            if args.versions and not query(prometheus, REFUSED_ALERT):
                late.append(f"no firing alert for the refused version: {REFUSED_ALERT}")
            if args.versions:
                split = query(
                    prometheus,
                    f'sum by (version) (increase(infer_model_requests_total{{model="{VERSIONED}"}}'
                    f"[{int(args.seconds) + 30}s]))",
                )
                print(
                    f"{VERSIONED} requests by version:",
                    {r["metric"].get("version"): round(float(r["value"][1])) for r in split},
                )
            if args.render:
                from monitoring.render import render

                render(prometheus, started, time.time(), args.render)
                print(f"dashboard drawn: {args.render}")
    ok = len(figures) - len([p for p in problems if not p.startswith("rule ")])
    problems += late
    report = {"traffic": statuses, "queries": figures, "problems": problems}
    (args.out / "prom_proof.json").write_text(json.dumps(report, indent=1, default=str))
    code = service.process.returncode
    print(f"{ok}/{len(expressions())} queries returned series; service exit status {code}")
    for problem in problems:
        print("FAILED", problem)
    return 1 if problems or service.process.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
