"""Batch command vs the raw ONNX session on the same inputs vs the service over HTTP.

    .venv/bin/python -m bench.batch_throughput --bundles .cache/bundles --model ner-food \
        --inputs utterances --count 1200
    .venv/bin/python -m bench.batch_throughput --bundles DIR --model postures-legal \
        --inputs documents --count 24

* batch: ``service.batch.runner.run`` in-process on a JSON-lines file (model already loaded):
  reading, limits, tokenization, batching, pipeline, result objects, JSON, append + fsync.
* raw session: the same windows in the same length-sorted batches (tokenized beforehand, not
  timed), only building the padded arrays and ``session.run``.
* HTTP: a real server process (bench.http_load), one text per request, closed loop at each
  concurrency; the best is reported.
Prints the CPU, then one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from bench.http_load import closed_loop, running_service
from bench.inputs import document
from service.batch.models import load_model
from service.batch.runner import Options, _Item, batches, run
from service.runtime.cpu_features import current_cpu
from service.settings import Settings
from service.text.inputs import build_inputs


def _texts(kind: str, count: int, tokenizer: Path) -> list[str]:
    if kind == "utterances":
        from default_models.food_corpus import generate_splits

        splits = generate_splits()
        pool = [e.text for e in splits["test"] + splits["dev"]]
        return [pool[i % len(pool)] + ("" if i < len(pool) else f" {i}") for i in range(count)]
    rng = random.Random(0)  # documents of 300 to 3,000 tokens (median ~1,650)
    return [document(tokenizer, rng.randint(300, 3000), seed=i) for i in range(count)]


def _raw_calls(model: Any, texts: list[str], opts: Options) -> Callable[[], None]:
    """The raw session over the batch command's batches, tokenized beforehand (not timed)."""
    pipeline: Any = model.loaded.runtime
    session = pipeline.session.session  # under the metrics wrapper
    items = [_Item(i, {}, model.prepare(t)) for i, t in enumerate(texts)]
    calls = []
    for batch in batches(items, opts.max_batch_size, opts.max_batch_tokens):
        rows = []
        for item in batch:
            p: Any = item.prepared
            if hasattr(p, "rows"):
                rows += p.rows
            else:
                rows += [p.encoded[0].ids[w.start : w.end] for w in p.windows[0]]
        calls.append(rows)
    tok = pipeline.tokenizer
    pad = pipeline.manifest.tokenizer.pad_token_id

    def run_all() -> None:
        for rows in calls:
            session.run(build_inputs(rows, tok.prefix_ids, tok.suffix_ids, pad))

    return run_all


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - started, time.process_time() - cpu


def opts_for(work: Path, data: Path, settings: Settings, tag: str) -> Options:
    """The batch command's options as the CLI sets them, a fresh output per repeat."""
    return Options(
        input=data,
        output=work / f"out-{tag}.jsonl",
        errors=work / f"err-{tag}.jsonl",
        max_batch_size=settings.max_batch_size,
        max_batch_tokens=settings.max_batch_tokens,
        progress=False,
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bundles", type=Path, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", choices=["utterances", "documents"], required=True)
    p.add_argument("--count", type=int, default=1200)
    p.add_argument("--concurrency", default="", help="HTTP concurrencies, e.g. 8,32")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"CPU: {current_cpu().describe()}", flush=True)
    settings = Settings(bundles_dir=args.bundles, models=[args.model])
    model = load_model(settings, args.model)
    tokenizer = args.bundles / args.model / "tokenizer.json"
    texts = _texts(args.inputs, args.count, tokenizer)
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    data = work / "in.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))

    def report(name: str, seconds: float, tokens: int, **extra: object) -> None:
        line = {"what": name, "texts": len(texts), "seconds": round(seconds, 3)}
        line |= {"texts_per_s": round(len(texts) / seconds, 2)}
        line |= {"tokens_per_s": round(tokens / seconds, 1), **extra}
        print(json.dumps(line), flush=True)

    raw_run = _raw_calls(model, texts, opts_for(work, data, settings, "warm"))
    batch_times: list[tuple[float, float]] = []
    raw_times: list[tuple[float, float]] = []
    tokens = 0
    # A/B interleaved: on a shared machine both see the same disturbance; medians reported.
    for r in range(args.repeats):
        opts = opts_for(work, data, settings, str(r))
        started, cpu = time.perf_counter(), time.process_time()
        tokens = run(model, opts).tokens
        batch_times.append((time.perf_counter() - started, time.process_time() - cpu))
        raw_times.append(_timed(raw_run))
    batch_s, batch_cpu = median(t for t, _ in batch_times), median(c for _, c in batch_times)
    raw_s, raw_cpu = median(t for t, _ in raw_times), median(c for _, c in raw_times)
    report("batch command", batch_s, tokens, cpu_s=round(batch_cpu, 2), repeats=args.repeats)
    report(
        "raw ONNX session (same batches)",
        raw_s,
        tokens,
        cpu_s=round(raw_cpu, 2),
        batch_vs_raw=round(raw_s / batch_s, 3),
        batch_vs_raw_per_cpu_s=round(raw_cpu / batch_cpu, 3),
        batch_vs_raw_each=[
            round(r / b, 3) for (b, _), (r, _) in zip(batch_times, raw_times, strict=True)
        ],
    )
    if args.concurrency:
        route = "/v1/entities" if args.inputs == "utterances" else "/v1/postures"
        with running_service(args.bundles, [args.model], work / "server.log") as server:
            for c in [int(x) for x in args.concurrency.split(",")]:
                bodies = [{"text": t} for t in texts]
                http = closed_loop(server, route, bodies, c, len(texts), warmup=min(4, c))
                assert http.errors == 0, http
                seconds = http.summary.seconds
                report(f"HTTP c={c}", seconds, tokens, batch_vs_http=round(seconds / batch_s, 3))


if __name__ == "__main__":
    main()
