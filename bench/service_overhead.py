"""The service's tax at c=1: one request at a time over HTTP vs the raw ONNX session at b=1.

    .venv/bin/python -m bench.service_overhead --model ner-food --inputs utterances
    .venv/bin/python -m bench.service_overhead --model postures-legal --inputs documents \\
        --baseline-root /path/to/other/checkout

Each round runs, one after another, every server (this checkout's ``python -m service``, and the
``--baseline-root`` checkout's when given: before/after in the same run) and the raw session
(the bundle's graph with the service's session options, inputs tokenized and padded beforehand,
``session.run`` only), ``--requests`` each; rounds interleave them so that other jobs on a shared
machine disturb all alike, and the figures are medians over rounds. Per server: client p50/p95,
and where the time goes, as the service's own metrics measured it (mean per request):
``infer_request_duration_seconds`` (the ASGI app: routing, body, validation, the model, the
response), its stages (``infer_stage_duration_seconds``: queue wait, tokenize, inference, decode),
and the rest (client-side p50 minus the server's mean: HTTP parsing in uvicorn, the socket, the
load generator). Prints the CPU, then one JSON line per round and a summary line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.host import served_graph
from bench.http_load import Server, closed_loop
from bench.inputs import document
from loadtest.server import ROOT
from loadtest.server import running_service as launch_service
from service.runtime.cpu_features import current_cpu

ROUTES = {"utterances": "/v1/entities", "documents": "/v1/postures"}


def _texts(kind: str, count: int, tokenizer: Path) -> list[str]:
    if kind == "utterances":
        from default_models.food_corpus import generate_splits

        splits = generate_splits()
        pool = [e.text for e in splits["test"] + splits["dev"]]
        return [pool[i % len(pool)] for i in range(count)]
    rng = random.Random(0)  # documents of 100 to 400 tokens: one window of the posture model
    return [document(tokenizer, rng.randint(100, 400), seed=i) for i in range(count)]


def scrape_timings(base: str, model: str, route: str) -> dict[str, float]:
    """Sums and counts of the request and stage histograms (cumulative since start)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=30).text):
        for sample in family.samples:
            labels = sample.labels
            if family.name == "infer_stage_duration_seconds" and labels.get("model") == model:
                key = f"stage:{labels['stage']}"
            elif family.name == "infer_request_duration_seconds" and (
                labels.get("route") == route and labels.get("status") == "200"
            ):
                key = "request"
            else:
                continue
            if sample.name.endswith("_sum"):
                out[f"{key}:sum"] = out.get(f"{key}:sum", 0.0) + sample.value
            elif sample.name.endswith("_count"):
                out[f"{key}:count"] = out.get(f"{key}:count", 0.0) + sample.value
    return out


def breakdown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean ms per request of each histogram between two scrapes."""
    names = {k.rsplit(":", 1)[0] for k in after}
    out = {}
    for name in sorted(names):
        count = after.get(f"{name}:count", 0.0) - before.get(f"{name}:count", 0.0)
        total = after.get(f"{name}:sum", 0.0) - before.get(f"{name}:sum", 0.0)
        if count:
            out[name.replace("stage:", "")] = 1000 * total / count
    return out


def _raw_b1(bundle: Path, texts: list[str], threads: int | None) -> Any:
    """The floor: ``session.run`` on one pre-tokenized, padded text (the service's options)."""
    from service.runtime.cpus import available_cpus
    from service.runtime.session import OnnxSession
    from service.text.inputs import build_inputs
    from service.text.tokenizer import TextTokenizer

    manifest = json.loads((bundle / "bundle.json").read_text())
    session = OnnxSession(
        bundle / served_graph(bundle),  # the graph the service serves on this CPU
        manifest["onnx"]["output"],
        threads or available_cpus(),
    )
    tokenizer = TextTokenizer(bundle / manifest["tokenizer"]["file"])
    capacity = manifest["tokenizer"]["max_length"] - tokenizer.num_special_tokens
    pad = manifest["tokenizer"]["pad_token_id"]
    feeds = [
        build_inputs([e.ids[:capacity]], tokenizer.prefix_ids, tokenizer.suffix_ids, pad)
        for e in tokenizer.encode_batch(texts)
    ]
    return session, feeds


def _time_raw(session: Any, feeds: list[Any], requests: int) -> list[float]:
    latencies = []
    for i in range(requests):
        t0 = time.perf_counter()
        session.run(feeds[i % len(feeds)])
        latencies.append(time.perf_counter() - t0)
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundles", type=Path, default=Path(".cache/bundles"))
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", choices=list(ROUTES), required=True)
    p.add_argument("--requests", type=int, default=200, help="per server and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--baseline-root", type=Path, help="another checkout, run alongside")
    p.add_argument("--env", action="append", default=[], help="INFER_X=value for both servers")
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        help="INFER_X=value for the baseline server only (e.g. the same checkout with "
        "INFER_INTRA_OP_SPINNING=true: --baseline-root . --baseline-env ...)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="clients in the closed loop (c>1: throughput A/B between checkouts; raw stays b=1)",
    )
    args = p.parse_args()
    print(f"CPU: {current_cpu().describe()}", flush=True)
    bundle = args.bundles / args.model
    texts = _texts(args.inputs, max(args.requests, 64), bundle / "tokenizer.json")
    route = ROUTES[args.inputs]
    bodies = [{"text": t} for t in texts]
    session, feeds = _raw_b1(bundle, texts, None)
    _time_raw(session, feeds, args.warmup)
    roots = {"this": ROOT}
    if args.baseline_root is not None:
        roots["baseline"] = args.baseline_root.resolve()
    env = {
        "INFER_MODELS": json.dumps([args.model]),
        "INFER_SHED_LATE_REQUESTS": "false",
        "INFER_MAX_QUEUE_TOKENS": "10000000",
    }
    env |= dict(item.split("=", 1) for item in args.env)
    logs = Path(tempfile.mkdtemp(prefix="service-overhead-"))
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, root in roots.items():
            own = (
                env | dict(i.split("=", 1) for i in args.baseline_env)
                if name == "baseline"
                else env
            )
            service = stack.enter_context(
                launch_service(args.bundles, logs / f"{name}.log", own, root=root)
            )
            servers[name] = Server(service.base, service.pid)
            closed_loop(servers[name], route, bodies, 1, args.warmup)
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            row: dict[str, Any] = {"round": r}
            for name, server in servers.items():
                before = scrape_timings(server.base, args.model, route)
                result = closed_loop(server, route, bodies, args.concurrency, args.requests)
                assert result.errors == 0, result
                after = scrape_timings(server.base, args.model, route)
                figures = result.summary.as_dict()
                row[name] = {
                    "per_s": figures["per_s"],
                    "p50_ms": figures["p50_ms"],
                    "p95_ms": figures["p95_ms"],
                    "server_ms": breakdown(before, after),
                }
            raw = _time_raw(session, feeds, args.requests)
            row["raw"] = {"p50_ms": _p(raw, 0.5), "p95_ms": _p(raw, 0.95)}
            print(json.dumps(row), flush=True)
            rounds.append(row)
    summary: dict[str, Any] = {"what": "medians over rounds", "model": args.model}
    summary["raw_b1_p50_ms"] = round(statistics.median(r["raw"]["p50_ms"] for r in rounds), 2)
    for name in servers:
        p50 = statistics.median(r[name]["p50_ms"] for r in rounds)
        stages = {
            k: round(statistics.median(r[name]["server_ms"].get(k, 0.0) for r in rounds), 3)
            for k in rounds[0][name]["server_ms"]
        }
        summary[name] = {
            "per_s": round(statistics.median(r[name]["per_s"] for r in rounds), 1),
            "p50_ms": round(p50, 2),
            "over_raw_ms": round(p50 - summary["raw_b1_p50_ms"], 2),
            "server_ms": stages,
            "outside_app_ms": round(p50 - stages.get("request", 0.0), 2),
        }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
