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
from pathlib import Path
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


def _raw_seconds(model: Any, texts: list[str], opts: Options, repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the best repeat."""
    pipeline = model.loaded.pipeline
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
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        for rows in calls:
            session.run(build_inputs(rows, tok.prefix_ids, tok.suffix_ids, pad))
        best = min(best, (time.perf_counter() - started, time.process_time() - cpu))
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bundles", type=Path, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", choices=["utterances", "documents"], required=True)
    p.add_argument("--count", type=int, default=1200)
    p.add_argument("--concurrency", default="", help="HTTP concurrencies, e.g. 8,32")
    p.add_argument("--repeats", type=int, default=2)
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

    tokens = 0
    batch_best, batch_cpu = float("inf"), 0.0
    for r in range(args.repeats):
        out = work / f"out-{r}.jsonl"
        opts = Options(
            input=data,
            output=out,
            errors=work / f"err-{r}.jsonl",
            max_batch_size=settings.max_batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            progress=False,
        )
        started, cpu = time.perf_counter(), time.process_time()
        summary = run(model, opts)
        batch_best, batch_cpu = min(
            (batch_best, batch_cpu), (time.perf_counter() - started, time.process_time() - cpu)
        )
        tokens = summary.tokens
    report("batch command", batch_best, tokens, cpu_s=round(batch_cpu, 2))
    raw, raw_cpu = _raw_seconds(model, texts, opts, args.repeats)
    report(
        "raw ONNX session (same batches)",
        raw,
        tokens,
        cpu_s=round(raw_cpu, 2),
        batch_vs_raw=round(raw / batch_best, 3),
        batch_vs_raw_per_cpu_s=round(raw_cpu / batch_cpu, 3),
    )
    if args.concurrency:
        route = "/v1/entities" if args.inputs == "utterances" else "/v1/postures"
        with running_service(args.bundles, [args.model], work / "server.log") as server:
            for c in [int(x) for x in args.concurrency.split(",")]:
                bodies = [{"text": t} for t in texts]
                result = closed_loop(server, route, bodies, c, len(texts), warmup=min(4, c))
                assert result.errors == 0, result
                seconds = result.summary.seconds
                report(f"HTTP c={c}", seconds, tokens, batch_vs_http=round(seconds / batch_best, 3))


if __name__ == "__main__":
    main()
