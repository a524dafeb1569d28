"""``python -m export calibrate`` on a span bundle: per-type thresholds that generalise.

Every validation text is scored by the bundle's own graph through the service's span runtime (same
windows, same word probabilities). One cut per entity type, used for its start, end and inside
probabilities alike, is searched on a grid (``GRID``: 0.02 to 0.98 in steps of 0.02); a cut's
figures are the exact-match span counts (type, first and last character as served) against the
gold spans. The options and the rule that picks one are the classifier calibration's
(:mod:`export.calibration.options`, :func:`export.calibration.selection.choose`): ``at_0.5``,
``global`` (one cut for all types, best span micro-F1), ``per_class`` (a type keeps its own cut
only where an inner cross-validation shows a micro-F1 gain whose 95% bootstrap interval lies above
0, and it has ``min_support`` gold spans), ``shrunk`` (kept own cuts pulled towards the global one
in logit space by ``support / (support + shrinkage)``). Each option is estimated out of fold
(stratified k-fold over documents); the simplest option that no more complex one beats beyond the
bootstrap uncertainty ships, so calibration is never worse than doing nothing by construction.
This module reads the data and scores it; the maths on the span counts is
:mod:`families.span.thresholds`, the report :mod:`families.span.report`.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from export.calibration.options import OPTIONS, Settings
from export.errors import ExportError
from export.progress import Progress
from families.span.decoding import pair_spans, split_parts
from families.span.runtime import SpanRuntime
from families.span.spec import SpanCalibration, SpanManifest, SpanOptionFigures, SpanThresholds
from families.span.thresholds import GRID, SpanSelection, select_cuts
from service.bundle import verify_bundle, write_manifest
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession

FloatArray = NDArray[np.float64]


class GoldSpan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str


class SpanDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    entities: list[GoldSpan]


def read_span_documents(path: Path) -> list[SpanDocument]:
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = SpanDocument.model_validate_json(line)
        except ValidationError as exc:
            raise ExportError(
                f"{path}:{number}: not a {{'text', 'entities': [{{start, end, label}}]}} "
                f"object: {exc}"
            ) from exc
        bad = [e for e in doc.entities if not e.start < e.end <= len(doc.text)]
        if bad:
            raise ExportError(f"{path}:{number}: entity offsets outside the text: {bad[:3]}")
        docs.append(doc)
    if not docs:
        raise ExportError(f"{path}: no documents")
    return docs


def span_counts(
    runtime: SpanRuntime, docs: list[SpanDocument], labels: list[str]
) -> tuple[FloatArray, Counter[str]]:
    """``[docs, types, GRID, 3]`` exact-match (tp, fp, fn) of every type at every grid cut."""
    index = {label: i for i, label in enumerate(labels)}
    types = len(labels)
    counts = np.zeros((len(docs), types, len(GRID), 3))
    unknown: Counter[str] = Counter()
    for begin in range(0, len(docs), 16):
        chunk = docs[begin : begin + 16]
        texts = [d.text for d in chunk]
        probs = runtime.probabilities(texts)
        encoded = runtime.tokenizer.encode_batch(texts)
        for offset, (doc, p, enc) in enumerate(zip(chunk, probs, encoded, strict=True)):
            gold: list[set[tuple[int, int]]] = [set() for _ in labels]
            for e in doc.entities:
                if e.label in index:
                    gold[index[e.label]].add((e.start, e.end))
                else:
                    unknown[e.label] += 1
            row = counts[begin + offset]
            row[:, :, 2] = np.asarray([len(g) for g in gold])[:, None]
            if not p.size:
                continue
            start, end, inside = split_parts(p, types)
            for t in range(types):
                for g, cut in enumerate(GRID.tolist()):
                    pairs = pair_spans(
                        start[:, t], end[:, t], inside[:, t], (cut, cut, cut), runtime.rule.nested
                    )
                    found = {runtime.char_span(doc.text, enc, i, j) for i, j in pairs}
                    found = {s for s in found if s[0] != s[1]}
                    tp = len(found & gold[t])
                    row[t, g] = tp, len(found) - tp, len(gold[t]) - tp
    return counts, unknown


def load_runtime(bundle: Path) -> tuple[SpanManifest, SpanRuntime]:
    manifest = verify_bundle(bundle)
    if not isinstance(manifest, SpanManifest):
        raise ExportError(f"{bundle} is a {manifest.task} bundle, not a span bundle")
    session = OnnxSession(bundle / manifest.onnx.file, manifest.onnx.output, available_cpus())
    return manifest, SpanRuntime(manifest, bundle, session, max_batch_size=8)


def summary_of(selection: SpanSelection, data: Path, documents: int) -> SpanCalibration:
    return SpanCalibration(
        data=data.name,
        documents=documents,
        method=selection.chosen,
        folds=selection.settings.folds,
        seed=selection.settings.seed,
        own_threshold=[d.own for d in selection.decisions],
        options={
            name: SpanOptionFigures(
                validation_micro_f1=option.validation_micro_f1,
                oof_micro_f1=option.oof_micro_f1.estimate,
                oof_micro_f1_low=option.oof_micro_f1.low,
                oof_micro_f1_high=option.oof_micro_f1.high,
            )
            for name, option in selection.options.items()
        },
    )


def run_span_calibration(
    bundle: Path,
    data: Path,
    settings: Settings,
    report_path: Path | None = None,
    plots: bool = True,
) -> dict[str, object]:
    """Score ``data`` with the bundle, choose the cuts, write them and the report (JSON, Markdown,
    PNG; default ``BUNDLE/calibration_report.*``, so the report ships in the bundle)."""
    from families.span.report import build_report, plot_f1_by_cut, to_markdown

    print(
        "warning: thresholds are tuned on this file; it must be a validation split, never the "
        "test split you report figures on",
        file=sys.stderr,
    )
    progress = Progress(total_steps=4)
    with progress.step(f"loading {bundle} and {data}"):
        manifest, runtime = load_runtime(bundle)
        docs = read_span_documents(data)
    with progress.step(f"scoring {len(docs)} documents with the bundle's ONNX graph"):
        counts, unknown = span_counts(runtime, docs, list(manifest.labels))
    with progress.step(f"cross-validating {len(OPTIONS)} options ({settings.folds} folds)"):
        selection = select_cuts(counts, settings)
        cuts = GRID[selection.cuts[selection.chosen]]
        updated = manifest.with_thresholds(
            [SpanThresholds(start=c, end=c, inside=c) for c in cuts.tolist()],
            summary_of(selection, data, len(docs)),
        )
    report_path = report_path or bundle / "calibration_report.json"
    stem = report_path.with_suffix("")
    with progress.step("writing the thresholds and the report"):
        report = build_report(
            selection,
            list(manifest.labels),
            counts,
            {"bundle": manifest.name, "data": str(data), "unknown_labels": dict(unknown)},
        )
        report_path.parent.mkdir(parents=True, exist_ok=True)
        images: dict[str, Path] = {}
        if plots:
            png = stem.parent / f"{stem.name}_f1_by_cut.png"
            images["Span F1 against the cut, per type"] = plot_f1_by_cut(report, png)
        files = {"json": report_path, "markdown": stem.with_suffix(".md"), **images}
        report["files"] = {key: str(path) for key, path in files.items()}
        write_manifest(updated, bundle)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        stem.with_suffix(".md").write_text(to_markdown(report, images))
    print(selection.reason)
    print(f"thresholds ({selection.chosen}) written to {bundle / 'bundle.json'}")
    return report
