"""Stream a JSON-lines corpus through a model: chunks, length-sorted batches, resumable output.

Order and resumption: the input is read in chunks of up to ``chunk_lines`` lines (the first ones
smaller: ``chunk_sizes``); inside a chunk the
pending records run in batches sorted by token width (then line), and each batch's lines are
appended as soon as it is done. Records already in the output are skipped on restart, so what a
killed run wrote is always a prefix of that sorted order and a resumed run writes the rest: the
final file is the same as an uninterrupted run's (fp32 results do not depend on the batch).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from service.batch.evaluate import Tally, evaluate, format_report
from service.batch.jsonl import AppendLog, dumps, printable, unwritable
from service.batch.models import BadRecord, BatchModel
from service.batch.shard import id_key, shard_of
from service.runtime.batcher import Packing, Prepared

log = logging.getLogger("service.batch")


@dataclass
class Options:
    input: Path
    output: Path
    errors: Path
    text_field: str = "text"
    id_field: str = "id"
    shard: tuple[int, int] = (0, 1)
    chunk_lines: int = 1024
    max_batch_size: int = 32
    max_batch_tokens: int = 16_384
    log_every_s: float = 30.0
    sync_every_s: float = 1.0
    progress: bool | None = None  # None: a bar when stderr is a TTY
    eval: bool = False
    eval_output: Path | None = None
    resamples: int = 1000


@dataclass
class Summary:
    input_lines: int = 0
    in_shard: int = 0
    written: int = 0
    already_done: int = 0
    errors: int = 0
    errors_before: int = 0
    tokens: int = 0
    seconds: float = 0.0
    interrupted: str | None = None
    repaired_bytes: int = 0
    evaluation: dict[str, Any] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "evaluation"}
        out["documents_per_s"] = round(self.written / self.seconds, 3) if self.seconds else 0.0
        out["tokens_per_s"] = round(self.tokens / self.seconds, 1) if self.seconds else 0.0
        return out


@dataclass
class _Item:
    line: int
    record: dict[str, Any]
    prepared: Prepared


@dataclass
class _Pending:
    """A tokenized chunk: its items and error records, and the lines it counted."""

    items: list[_Item | dict[str, Any]]
    counts: Summary


class _Stop:
    """SIGINT/SIGTERM: finish the current batch, then stop; a second SIGINT stops at once."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        log.warning("%s: stopping after the current batch", self.signal)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


# The first chunk's reading and tokenizing overlap nothing (the next ones overlap the previous
# chunk's batches), so chunks start this small and double up to ``chunk_lines``: with 1,024-line
# chunks of 300-3,000-token documents the first one's tokenization alone took as long as the
# tiny posture model's inference over it.
FIRST_CHUNK_LINES = 64


def chunk_sizes(size: int) -> Iterator[int]:
    """64, 128, ... doubling up to ``size``, then ``size`` forever (the same for every run of a
    file, so a resumed run sorts the same chunks)."""
    current = min(size, FIRST_CHUNK_LINES)
    while True:
        yield current
        current = min(size, current * 2)


def _chunks(path: Path, size: int) -> Iterator[list[tuple[int, bytes]]]:
    sizes = chunk_sizes(size)
    limit = next(sizes)
    chunk: list[tuple[int, bytes]] = []
    for number, raw in _lines(path):
        chunk.append((number, raw))
        if len(chunk) == limit:
            yield chunk
            chunk, limit = [], next(sizes)
    if chunk:
        yield chunk


def batches(items: list[_Item], max_windows: int, max_tokens: int) -> Iterator[list[_Item]]:
    """Length-sorted, within the service's budget (``Packing``, the batcher's rule): windows <=
    max_windows and windows x widest window <= max_tokens; one item over the budget runs alone."""
    ordered = sorted(items, key=lambda it: (it.prepared.width, it.line))
    batch: list[_Item] = []
    packing = Packing(max_windows, max_tokens)
    for item in ordered:
        if not packing.add(item.prepared):
            yield batch
            batch, packing = [], Packing(max_windows, max_tokens)
            packing.add(item.prepared)
        batch.append(item)
    if batch:
        yield batch


class _Progress:
    """tqdm on a TTY; otherwise a log line every ``every_s`` seconds."""

    def __init__(self, enabled: bool, total: int | None, every_s: float, summary: Summary) -> None:
        self.summary = summary
        self.every_s = every_s
        self.started = time.monotonic()
        self.last_log = self.started
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="doc", dynamic_ncols=True, file=sys.stderr)

    def update(self, documents: int, tokens: int) -> None:
        s = self.summary
        elapsed = max(time.monotonic() - self.started, 1e-9)
        if self.bar is not None:
            self.bar.update(documents)
            self.bar.set_postfix(
                tokens=s.tokens, tok_s=f"{s.tokens / elapsed:,.0f}", errors=s.errors, refresh=False
            )
            return
        now = time.monotonic()
        if now - self.last_log >= self.every_s:
            self.last_log = now
            log.info(
                "%d written, %d already done, %d errors; %d tokens; %.2f docs/s, %.0f tokens/s",
                s.written,
                s.already_done,
                s.errors,
                s.tokens,
                s.written / elapsed,
                s.tokens / elapsed,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(model: BatchModel, opts: Options) -> Summary:
    """Score every pending record of this shard; see the module docstring for the guarantees."""
    summary = Summary()
    out, errors = AppendLog(opts.output).open(), AppendLog(opts.errors).open()
    try:
        summary.repaired_bytes = out.repaired_bytes + errors.repaired_bytes
        done = {id_key(r["id"]) for r in out.records() if "id" in r}
        failed_lines = {int(r["line"]) for r in errors.records() if "line" in r}
        summary.errors_before = len(failed_lines)
        total = None
        show_bar = opts.progress if opts.progress is not None else sys.stderr.isatty()
        if show_bar:
            total = sum(1 for _ in _lines(opts.input)) // opts.shard[1]
        progress = _Progress(show_bar, total, opts.log_every_s, summary)
        started = last_sync = time.monotonic()
        first_line: dict[str, int] = {}
        chunks = _chunks(opts.input, opts.chunk_lines)

        def tokenize_next() -> Future[tuple[list[tuple[int, bytes]], _Pending]] | None:
            chunk = next(chunks, None)
            if chunk is None:
                return None

            def tokenize() -> tuple[list[tuple[int, bytes]], _Pending]:
                counts = Summary()  # added to the run's when the chunk runs, not before
                found = _pending(model, opts, chunk, done, failed_lines, first_line, counts)
                return chunk, _Pending(found, counts)

            return ahead.submit(tokenize)

        def write(batch: list[_Item], scored: Any, skipped: int) -> None:
            """Decode one batch and append its lines (on the finisher thread, in batch order)."""
            nonlocal last_sync
            results = model.finish([it.prepared for it in batch], scored)
            tokens = 0
            for item, result in zip(batch, results, strict=True):
                line = {**item.record, "result": result}
                problem = unwritable(line)
                if problem is not None:  # never crash on a value the reader accepted
                    ident = printable(item.record.get("id"))
                    errors.append({"line": item.line, "id": ident, "reason": problem})
                    summary.errors += 1
                    continue
                out.append(line)
                tokens += item.prepared.tokens
            if time.monotonic() - last_sync >= opts.sync_every_s:
                out.sync()  # node-crash durability; kill -9 safety needs no fsync
                last_sync = time.monotonic()
            summary.written += len(batch)
            summary.tokens += tokens
            summary.seconds = time.monotonic() - started
            progress.update(len(batch) + skipped, tokens)

        # The next chunk is read and tokenized on a thread while this one's batches run, and a
        # batch is decoded and written on another while the next batch's ONNX calls run (the Rust
        # tokenizer and ONNX Runtime release the GIL); chunks and batches still go in order.
        with (
            _Stop() as stop,
            ThreadPoolExecutor(1, thread_name_prefix="batch-tokenize") as ahead,
            ThreadPoolExecutor(1, thread_name_prefix="batch-finish") as finisher,
        ):
            future = tokenize_next()
            writing: Future[None] | None = None
            while future is not None:
                chunk, tokenized = future.result()
                future = tokenize_next()
                pending = tokenized.items
                summary.input_lines += tokenized.counts.input_lines
                summary.in_shard += tokenized.counts.in_shard
                summary.already_done += tokenized.counts.already_done
                pending_errors = [p for p in pending if isinstance(p, dict)]
                for error in pending_errors:
                    errors.append(error)
                    summary.errors += 1
                items = [p for p in pending if isinstance(p, _Item)]
                skipped = len(chunk) - len(items)
                for batch in batches(items, opts.max_batch_size, opts.max_batch_tokens):
                    scored = model.score([it.prepared for it in batch])
                    if writing is not None:  # at most one batch waits to be written
                        writing.result()
                    writing = finisher.submit(write, batch, scored, skipped)
                    skipped = 0
                    if stop.signal:
                        break
                if writing is not None:  # the chunk is written before the next one's errors
                    writing.result()
                    writing = None
                if skipped:
                    progress.update(skipped, 0)
                if stop.signal:
                    summary.interrupted = stop.signal
                    break
        summary.seconds = time.monotonic() - started
        progress.close()
    finally:
        out.close()
        errors.close()
    if opts.eval and summary.interrupted is None:
        summary.evaluation = _evaluate(model, opts)
    return summary


def _pending(
    model: BatchModel,
    opts: Options,
    chunk: list[tuple[int, bytes]],
    done: set[str],
    failed_lines: set[int],
    first_line: dict[str, int],
    summary: Summary,
) -> list[_Item | dict[str, Any]]:
    """This shard's records of a chunk still to score (tokenized), and new error records."""
    index, count = opts.shard
    pending: list[tuple[int, dict[str, Any]] | dict[str, Any]] = []  # (line, record) or error
    texts: list[str] = []
    keys: list[str] = []
    for number, raw in chunk:
        summary.input_lines += 1
        if not raw.strip():
            continue  # blank lines are not records
        record: Any = None
        try:
            record = json.loads(raw)
        except ValueError as exc:
            reason = f"not JSON: {exc}"
        else:
            reason = "" if isinstance(record, dict) else "not a JSON object"
        ident = record.get(opts.id_field, number) if not reason else None
        key = id_key(ident) if not reason else id_key(f"line {number}")
        if shard_of(key, count) != index:
            continue
        summary.in_shard += 1
        if number in failed_lines:
            continue  # reported by an earlier run
        if not reason:
            assert isinstance(record, dict)
            reason = _problem(record, opts.text_field, ident, key, number, first_line)
        if not reason and key in done:
            summary.already_done += 1
            continue
        if not reason:
            carried = {k: v for k, v in record.items() if k not in (opts.text_field, "id")}
            pending.append((number, {"id": ident, **carried}))
            texts.append(record[opts.text_field])
            keys.append(key)
            continue
        pending.append({"line": number, "id": printable(ident), "reason": reason})
    # The chunk's texts in one tokenizer call (BatchModel.prepare_many), then, in line order,
    # the checks a record gets after tokenization, as one by one.
    prepared = iter(model.prepare_many(texts))
    key_of = iter(keys)
    ready: list[_Item | dict[str, Any]] = []
    for entry in pending:
        if isinstance(entry, dict):
            ready.append(entry)
            continue
        (number, record), item, key = entry, next(prepared), next(key_of)
        if isinstance(item, BadRecord):
            reason = str(item)
        else:
            problem = unwritable(record)
            if problem is None:
                ready.append(_Item(number, record, item))
                done.add(key)
                continue
            reason = f"the record {problem}"
        ready.append({"line": number, "id": printable(record["id"]), "reason": reason})
    return ready


def _problem(
    record: dict[str, Any],
    text_field: str,
    ident: Any,
    key: str,
    number: int,
    first_line: dict[str, int],
) -> str:
    if isinstance(ident, (dict, list)) or ident is None:
        return "id must be a string or a number"
    seen = first_line.setdefault(key, number)
    if seen != number:
        return f"duplicate id (first at line {seen})"
    text = record.get(text_field)
    if text is None:
        return f"no {text_field!r} field"
    if not isinstance(text, str):
        return f"{text_field!r} is not a string"
    return ""


def _evaluate(model: BatchModel, opts: Options) -> dict[str, Any]:
    """Join this shard's input records (text, gold) with their results in the output."""
    results = {}
    for record in AppendLog(opts.output).records():
        results[id_key(record["id"])] = record["result"]
    tally = Tally()
    skipped = 0
    for number, raw in _lines(opts.input):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        key = id_key(record.get(opts.id_field, number))
        result = results.get(key)
        gold = record.get(model.gold_field)
        if result is None or gold is None:
            skipped += 1 if result is not None else 0
            continue
        try:
            tally.add(*model.eval_units(record[opts.text_field], gold, result))
        except BadRecord:
            skipped += 1
    report = evaluate(tally, model.eval_classes(), opts.resamples)
    report["model"] = {"name": model.name, "version": model.version}
    report["without_gold"] = skipped
    text = format_report(report)
    print(text, file=sys.stderr)
    target = opts.eval_output or opts.output.with_name(opts.output.name + ".eval.json")
    target.write_text(dumps(report) + "\n", encoding="utf-8")
    return report
