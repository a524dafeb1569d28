"""``python -m export calibrate``: per-class thresholds from a validation split, into the bundle.

Probabilities come from the bundle's own ONNX graph through the service's posture pipeline (same
windows, same aggregation), so the thresholds match what is served.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from export.errors import ExportError
from export.postures.thresholds import calibrate, micro_macro, prf
from export.progress import Progress
from service.bundle import CalibrationSummary, PostureManifest, verify_bundle, write_manifest
from service.postures.pipeline import PosturePipeline
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession

TEST_SPLIT_WARNING = (
    "warning: thresholds are tuned on this file; it must be a validation split, never the test "
    "split you report figures on"
)


class LabelledDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    labels: list[str]


@dataclass(frozen=True)
class CalibrationOptions:
    bundle: Path
    data: Path
    min_support: int = 5
    report: Path | None = None
    batch_size: int = 8


def read_documents(path: Path) -> list[LabelledDocument]:
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            docs.append(LabelledDocument.model_validate_json(line))
        except ValidationError as exc:
            raise ExportError(f"{path}:{number}: not a {{'text', 'labels'}} object: {exc}") from exc
    if not docs:
        raise ExportError(f"{path}: no documents")
    return docs


def _truth(docs: list[LabelledDocument], labels: list[str]) -> tuple[np.ndarray, Counter[str]]:
    index = {label: i for i, label in enumerate(labels)}
    truth = np.zeros((len(docs), len(labels)), dtype=bool)
    unknown: Counter[str] = Counter()
    for row, doc in enumerate(docs):
        for label in doc.labels:
            if label in index:
                truth[row, index[label]] = True
            else:
                unknown[label] += 1
    return truth, unknown


def _per_class(labels, probs, truth, thresholds, fallback) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rows = []
    for c, label in enumerate(labels):
        half, tuned = (
            prf(probs[:, c] >= 0.5, truth[:, c]),
            prf(probs[:, c] >= thresholds[c], truth[:, c]),
        )
        rows.append(
            {
                "label": label,
                "support": int(truth[:, c].sum()),
                "threshold": round(float(thresholds[c]), 6),
                "fallback_to_global": bool(fallback[c]),
                "at_0.5": vars(half),
                "at_threshold": vars(tuned),
            }
        )
    return rows


def _print_report(report: dict[str, object]) -> None:
    print(f"{'label':<40} {'support':>7} {'thresh':>7} {'F1@0.5':>7} {'F1@thr':>7}")
    for row in report["classes"]:  # type: ignore[attr-defined]
        flag = " (global)" if row["fallback_to_global"] else ""
        print(
            f"{row['label'][:40]:<40} {row['support']:>7} {row['threshold']:>7.3f} "
            f"{row['at_0.5']['f1']:>7.3f} {row['at_threshold']['f1']:>7.3f}{flag}"
        )
    for key in ("at_0.5", "global", "per_class"):
        figures = report["summary"][key]  # type: ignore[index]
        print(
            f"{key:<10} threshold {figures['threshold']!s:>8}  micro-F1 {figures['micro_f1']:.4f}  "
            f"macro-F1 {figures['macro_f1']:.4f}"
        )
    if report["unknown_labels"]:
        print(
            f"labels in the data that the model does not have (ignored): {report['unknown_labels']}"
        )


def run_calibration(options: CalibrationOptions) -> dict[str, object]:
    print(TEST_SPLIT_WARNING, file=sys.stderr)
    progress = Progress(total_steps=3)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        manifest = verify_bundle(options.bundle)
        if not isinstance(manifest, PostureManifest):
            raise ExportError(
                f"{options.bundle} is a {manifest.task} bundle; calibration needs postures"
            )
        docs = read_documents(options.data)
        truth, unknown = _truth(docs, manifest.labels)
        session = OnnxSession(
            options.bundle / manifest.onnx.file, manifest.onnx.output, available_cpus()
        )
        pipeline = PosturePipeline(
            manifest, options.bundle, session, max_batch_size=options.batch_size
        )
    with progress.step(f"scoring {len(docs)} documents with the bundle's ONNX graph"):
        probs = np.concatenate(
            [
                pipeline.probabilities([d.text for d in docs[i : i + 16]]).probabilities
                for i in range(0, len(docs), 16)
            ]
        )
    with progress.step("choosing thresholds"):
        result = calibrate(probs, truth, options.min_support)
        labels = manifest.labels
        half = np.full(len(labels), 0.5)
        glob = np.full(len(labels), result.global_threshold)
        summary = {}
        for key, thresholds, shown in (
            ("at_0.5", half, 0.5),
            ("global", glob, result.global_threshold),
            ("per_class", result.thresholds, "per class"),
        ):
            micro, macro = micro_macro(probs, truth, thresholds)
            summary[key] = {"threshold": shown, "micro_f1": micro, "macro_f1": macro}
        report = {
            "bundle": manifest.name,
            "data": str(options.data),
            "documents": len(docs),
            "min_support": options.min_support,
            "unknown_labels": dict(unknown),
            "summary": summary,
            "classes": _per_class(labels, probs, truth, result.thresholds, result.fallback),
        }
        updated = manifest.model_copy(
            update={
                "postures": manifest.postures.model_copy(
                    update={
                        "thresholds": [float(t) for t in result.thresholds],
                        "global_threshold": float(result.global_threshold),
                        "calibration": CalibrationSummary(
                            data=options.data.name,
                            documents=len(docs),
                            min_support=options.min_support,
                            micro_f1_at_half=summary["at_0.5"]["micro_f1"],
                            micro_f1_global=summary["global"]["micro_f1"],
                            micro_f1_per_class=summary["per_class"]["micro_f1"],
                            macro_f1_at_half=summary["at_0.5"]["macro_f1"],
                            macro_f1_per_class=summary["per_class"]["macro_f1"],
                        ),
                    }
                )
            }
        )
        PostureManifest.model_validate(updated.model_dump())
        write_manifest(updated, options.bundle)
        report_path = options.report or options.bundle / "calibration_report.json"
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    _print_report(report)
    print(f"thresholds written to {options.bundle / 'bundle.json'}; report saved to {report_path}")
    return report
