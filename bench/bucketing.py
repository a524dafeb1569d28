"""Length buckets vs one padded call: padded share, ONNX calls and throughput of ``run_rows``.

The service runs every merged batch through ``run_rows``, which cuts it into length buckets
(``service.text.inputs.bucketed_batches``). This times the bundle's own session through that loop
on batches of utterances, for several per-call overheads (in tokens; a huge one = one padded call
per batch, the plan before bucketing), so the default overhead can be chosen by measurement.

    .venv/bin/python -m bench.bucketing .cache/bundles/ner-food --overheads 0 8 16 32 64 1000000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.host import served_graph
from service.runtime.batch_loop import run_rows
from service.runtime.cpu_features import current_cpu
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.inputs import bucketed_batches, padding
from service.text.tokenizer import TextTokenizer

ONE_CALL = 10**9  # an overhead no padding can beat: the whole batch in as few calls as fit


def measure(
    bundle: Path,
    texts: list[str],
    batch_size: int,
    overheads: list[int],
    budget_s: float,
    threads: int,
) -> dict[str, Any]:
    """Per overhead: utterances/s, padded share and ONNX calls per batch (same batches for all)."""
    manifest = json.loads((bundle / "bundle.json").read_text())
    session = OnnxSession(bundle / served_graph(bundle), manifest["onnx"]["output"], threads)
    tokenizer = TextTokenizer(bundle / "tokenizer.json")
    pad = manifest["tokenizer"]["pad_token_id"]
    rows = [e.ids for e in tokenizer.encode_batch(texts)]
    batches = [rows[i : i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]
    special = tokenizer.num_special_tokens
    run_rows(session, batches[0], tokenizer, pad, batch_size)  # warm-up
    results: dict[str, Any] = {}
    for overhead in overheads:
        useful = padded = calls = done = 0
        started, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            lengths = [len(r) + special for r in batch]
            plan = bucketed_batches(lengths, batch_size, None, overhead)
            u, p = padding(lengths, plan)
            useful, padded, calls = useful + u, padded + p, calls + len(plan)
            run_rows(session, batch, tokenizer, pad, batch_size, call_overhead_tokens=overhead)
            done += 1
            if done >= 2 and time.perf_counter() - started > budget_s:
                break
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        results["one call" if overhead >= ONE_CALL else str(overhead)] = {
            "per_s": done * batch_size / seconds,
            "per_cpu_s": done * batch_size / cpu,  # the service's ceiling needs its CPU cost
            "padded_fraction": padded / (useful + padded),
            "calls_per_batch": calls / done,
            "batches": done,
        }
    return results


def main() -> None:
    from bench.inputs import utterances

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--overheads", type=int, nargs="+", default=[0, 8, 16, 32, 64, ONE_CALL])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--utterances", type=int, default=256)
    parser.add_argument("--budget-s", type=float, default=15.0)
    args = parser.parse_args()
    print(f"CPU: {current_cpu().describe()}, {available_cpus()} CPUs", flush=True)
    texts = utterances(args.bundle / "tokenizer.json", args.utterances)
    results = measure(
        args.bundle, texts, args.batch_size, args.overheads, args.budget_s, available_cpus()
    )
    print("| overhead (tokens/call) | padded share | calls per batch | utterances/s |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['padded_fraction']:.1%} | {r['calls_per_batch']:.1f} "
            f"| {r['per_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
