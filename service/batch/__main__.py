"""``python -m service.batch``: score a JSON-lines corpus with one bundle (README "Batch scoring").

Exit status: 0 every record of the shard is scored; 1 some records are in the error file (this run
or an earlier one); 2 the command could not run (arguments, bundle, lock); 3 an unexpected error
(worth a retry: the rerun resumes); 128+N stopped by signal N after finishing its current batch
(run it again to resume).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from service.batch.jsonl import LockedError, dumps
from service.batch.runner import Options, run
from service.batch.shard import parse_shard


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m service.batch",
        description="Score a JSON-lines corpus with a bundle; resumable, shardable.",
    )
    p.add_argument("--bundles", type=Path, required=True, help="directory of bundles")
    p.add_argument("--model", help="bundle name (needed when --bundles holds several)")
    p.add_argument("--input", type=Path, required=True, help="JSON lines with an id and a text")
    p.add_argument("--output", type=Path, required=True, help="JSON lines, appended (resumable)")
    p.add_argument("--errors", type=Path, help="bad records (default: OUTPUT.errors.jsonl)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id", help="absent in a record: its line number")
    p.add_argument("--shard", default="0/1", help="INDEX/COUNT: this worker's share, by id hash")
    p.add_argument(
        "--top-k", type=int, help="postures, classify: at most this many (as the API's top_k)"
    )
    p.add_argument(
        "--scores", action="store_true", help="postures, classify: as the API's return_scores"
    )
    p.add_argument(
        "--redact",
        choices=["mask", "placeholder", "hash", "remove"],
        help="ner: write /v1/redact's result (this mode) instead of the entities",
    )
    p.add_argument("--labels", help="with --redact: comma-separated entity types to redact")
    p.add_argument("--min-score", type=float, help="with --redact: redact entities scoring >= this")
    p.add_argument("--eval", action="store_true", help="F1 with bootstrap CIs against gold")
    p.add_argument("--eval-output", type=Path, help="default: OUTPUT.eval.json")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--chunk-lines", type=int, default=1024, help="input lines sorted together")
    p.add_argument("--log-every", type=float, default=30.0, help="seconds between log lines")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None)
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("service.batch")
    try:
        shard = parse_shard(args.shard)
        if args.chunk_lines < 1 or args.resamples < 0:
            raise ValueError("--chunk-lines must be >= 1 and --resamples >= 0")
        if not args.input.is_file():
            raise ValueError(f"--input {args.input} is not a file")
        from service.batch.models import load_model, redaction_for
        from service.settings import Settings

        settings = Settings(bundles_dir=args.bundles, models=[args.model] if args.model else [])
        model = load_model(settings, args.model, args.top_k, args.scores)
        if args.redact:
            if args.eval:
                raise ValueError("--redact and --eval do not go together")
            labels = args.labels.split(",") if args.labels else None
            model.redaction = redaction_for(model, args.redact, labels, args.min_score)
        elif args.labels or args.min_score is not None:
            raise ValueError("--labels and --min-score go with --redact")
        opts = Options(
            input=args.input,
            output=args.output,
            errors=args.errors or args.output.with_name(args.output.name + ".errors.jsonl"),
            text_field=args.text_field,
            id_field=args.id_field,
            shard=shard,
            chunk_lines=args.chunk_lines,
            max_batch_size=settings.max_batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            log_every_s=args.log_every,
            progress=args.progress,
            eval=args.eval,
            eval_output=args.eval_output,
            resamples=args.resamples,
        )
        log.info(
            "%s %s (%s) shard %d/%d: %s -> %s",
            model.name,
            model.version,
            model.task,
            *shard,
            args.input,
            args.output,
        )
        summary = run(model, opts)
    except (ValueError, LockedError, OSError) as exc:
        log.error("%s", exc)
        return 2
    except Exception:  # not Python's default 1: that status means "bad records" here
        log.exception("unexpected error; what was written is kept, a rerun resumes")
        return 3
    print(dumps({"summary": summary.as_dict()}), file=sys.stderr)
    if summary.interrupted:
        return 128 + signal.Signals[summary.interrupted].value
    return 1 if summary.errors + summary.errors_before else 0


if __name__ == "__main__":
    sys.exit(main())
