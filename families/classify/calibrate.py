"""``python -m export calibrate``: thresholds that generalise, chosen on a validation split.

Probabilities come from the bundle's own ONNX graph through the service's posture pipeline (same
windows, same aggregation), so the thresholds match what is served. The candidate rules (0.5, one
global threshold, per class, per class shrunk to global) are cross-validated inside the split and
the one with the best out-of-fold micro-F1 ships (``export.calibration.selection``); the report
(JSON, Markdown, PNG) says what each would score and why each class got its threshold.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from export.calibration.automation import automation
from export.calibration.options import OPTIONS
from export.calibration.report import automation_markdown, build_report, to_markdown
from export.calibration.selection import Selection, select
from export.progress import Progress
from families.classify.abstain import run_abstain_calibration
from families.classify.spec import CalibrationOption, CalibrationSummary
from families.classify.validation import (
    CalibrationOptions,
    LabelledDocument,
    load_classifier,
    score,
)
from service.bundle import BundleManifest, read_manifest, write_manifest
from service.review import AutomationSummary

TEST_SPLIT_WARNING = (
    "warning: thresholds are tuned on this file; it must be a validation split, never the test "
    "split you report figures on"
)


def truth_of(gold_labels: list[list[str]], labels: list[str]) -> tuple[np.ndarray, Counter[str]]:
    """[texts, labels] gold matrix, and the counts of gold labels the model does not have."""
    index = {label: i for i, label in enumerate(labels)}
    truth = np.zeros((len(gold_labels), len(labels)), dtype=bool)
    unknown: Counter[str] = Counter()
    for row, given in enumerate(gold_labels):
        for label in given:
            if label in index:
                truth[row, index[label]] = True
            else:
                unknown[label] += 1
    return truth, unknown


def report_paths(report: Path) -> dict[str, Path]:
    """The JSON path and its siblings: ``<stem>.md``, ``<stem>_f1_curves.png``, ..."""
    stem = report.with_suffix("")
    return {
        "json": report,
        "markdown": stem.with_suffix(".md"),
        "f1_curves": stem.parent / f"{stem.name}_f1_curves.png",
        "reliability": stem.parent / f"{stem.name}_reliability.png",
    }


def draw_plots(
    report: dict[str, object],
    probs: np.ndarray,
    truth: np.ndarray,
    paths: dict[str, Path],
    plots: bool,
) -> dict[str, Path]:
    """The F1-curve and reliability PNGs of a multi-label report (when ``plots``); records every
    file the report will have under ``report["files"]``; the images for the Markdown."""
    images: dict[str, Path] = {}
    if plots:
        from export.calibration.plots import plot_f1_curves, plot_reliability

        images["F1 vs threshold per class"] = plot_f1_curves(
            report, probs, truth, paths["f1_curves"]
        )
        images["Reliability diagram"] = plot_reliability(report, probs, truth, paths["reliability"])
    shown = ("json", "markdown", "f1_curves", "reliability") if plots else ("json", "markdown")
    report["files"] = {key: str(paths[key]) for key in shown}
    return images


def summary_of(selection: Selection, data: Path, documents: int) -> CalibrationSummary:
    """What the manifest records: the old figures (validation) plus the cross-validated ones."""
    options = selection.options
    return CalibrationSummary(
        data=data.name,
        documents=documents,
        min_support=selection.settings.min_support,
        micro_f1_at_half=options["at_0.5"].validation_micro_f1,
        micro_f1_global=options["global"].validation_micro_f1,
        micro_f1_per_class=options["per_class"].validation_micro_f1,
        macro_f1_at_half=options["at_0.5"].validation_macro_f1,
        macro_f1_per_class=options["per_class"].validation_macro_f1,
        method=selection.chosen,
        folds=selection.settings.folds,
        seed=selection.settings.seed,
        own_threshold=[d.own for d in selection.decisions],
        options={
            name: CalibrationOption(
                validation_micro_f1=options[name].validation_micro_f1,
                validation_macro_f1=options[name].validation_macro_f1,
                oof_micro_f1=options[name].oof_micro_f1.estimate,
                oof_micro_f1_low=options[name].oof_micro_f1.low,
                oof_micro_f1_high=options[name].oof_micro_f1.high,
                oof_macro_f1=options[name].oof_macro_f1,
            )
            for name in OPTIONS
        },
    )


def print_report(report: dict[str, object]) -> None:
    print(f"{'label':<40} {'support':>7} {'thresh':>7} {'F1@0.5':>7} {'F1@thr':>7}  decision")
    for row in report["classes"]:  # type: ignore[attr-defined]
        print(
            f"{row['label'][:40]:<40} {row['support']:>7} {row['threshold']:>7.3f} "
            f"{row['at_0.5']['f1']:>7.3f} {row['at_threshold']['f1']:>7.3f}  {row['reason']}"
        )
    print(f"{'option':<10} {'threshold':>9}  validation micro-F1  out-of-fold micro-F1 [95%]")
    for name, figures in report["summary"].items():  # type: ignore[attr-defined]
        oof = figures["oof_micro_f1"]
        mark = "  <- shipped" if figures["shipped"] else ""
        print(
            f"{name:<10} {figures['threshold']!s:>9}  micro-F1 {figures['micro_f1']:.4f}       "
            f"{oof['estimate']:.4f} [{oof['low']:.4f}, {oof['high']:.4f}]{mark}"
        )
    print(report["shipped"]["reason"])  # type: ignore[index]
    if report["unknown_labels"]:
        print(
            f"labels in the data that the model does not have (ignored): {report['unknown_labels']}"
        )


def _print_automation(summary: AutomationSummary) -> None:
    print(f"{'label':<40} {'F1 [95%]':>21} {'automate':>8}  review band")
    for c in summary.classes:
        print(
            f"{c.label[:40]:<40} {c.f1.value:.3f} [{c.f1.low:.3f}, {c.f1.high:.3f}] "
            f"{'yes' if c.automate else 'no':>8}  [{c.band_low:.3f}, {c.band_high:.3f})"
        )
    automated = sum(c.automate for c in summary.classes)
    print(
        f"{automated}/{len(summary.classes)} classes automated (F1 low end >= "
        f"{summary.target_f1}); validation review rate {summary.review_rate:.3f}, issued labels' "
        f"precision {_figure(summary.automated_precision)} (target {summary.target_precision}), "
        f"issued absences' miss rate {_figure(summary.automated_miss_rate)} (target "
        f"{_figure(summary.target_miss_rate)})"
    )
    if summary.oof is not None:
        oof = summary.oof
        print(
            f"out of fold (band edges from the other folds): review rate {oof.review_rate:.3f}, "
            f"precision {_figure(oof.automated_precision)}, miss rate "
            f"{_figure(oof.automated_miss_rate)}"
        )


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class DecisionManifest(Protocol):
    """A multi-label manifest whose thresholds and calibration summary can be replaced (the
    classify/postures manifests, TF-IDF bundles)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> list[str]: ...

    def with_decisions(self, **fields: Any) -> BundleManifest: ...


def run_calibration(options: CalibrationOptions) -> dict[str, object]:
    """Multi-label bundles: per-class threshold options; single-label: the abstain threshold."""
    print(TEST_SPLIT_WARNING, file=sys.stderr)
    if read_manifest(options.bundle).head == "single-label":
        return run_abstain_calibration(options)
    progress = Progress(total_steps=5 if options.automation else 4)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        manifest, docs, pipeline = load_classifier(options)
    with progress.step(f"scoring {len(docs)} documents with the bundle's ONNX graph"):
        probs = score(pipeline, docs)
    return calibrate_probabilities(options, manifest, docs, probs, progress)


def calibrate_probabilities(
    options: CalibrationOptions,
    manifest: DecisionManifest,
    docs: list[LabelledDocument],
    probs: np.ndarray,
    progress: Progress,
) -> dict[str, object]:
    """The multi-label calibration of served validation probabilities, whatever the family:
    cross-validated thresholds, per-class automation, the manifest rewritten, the report."""
    truth, unknown = truth_of([d.labels for d in docs], manifest.labels)
    with progress.step(
        f"cross-validating {len(OPTIONS)} threshold options ({options.settings.folds} folds)"
    ):
        selection = select(probs, truth, options.settings)
        shipped = selection.shipped
        summary = summary_of(selection, options.data, len(docs))
    if options.automation is not None:
        with progress.step(
            f"per-class automation (F1 low end >= {options.automation.target_f1}, review band "
            f"for precision {options.automation.target_precision})"
        ):
            summary = summary.model_copy(
                update={
                    "automation": automation(
                        probs,
                        truth,
                        [float(t) for t in shipped.thresholds],
                        manifest.labels,
                        options.automation,
                    )
                }
            )
    updated = manifest.with_decisions(
        thresholds=[float(t) for t in shipped.thresholds],
        global_threshold=float(selection.global_threshold),
        calibration=summary,
    )
    paths = report_paths(options.report or options.bundle / "calibration_report.json")
    with progress.step("writing the thresholds and the report"):
        report = build_report(
            selection,
            manifest.labels,
            probs,
            truth,
            {"bundle": manifest.name, "data": str(options.data), "unknown_labels": dict(unknown)},
        )
        if summary.automation is not None:
            report["automation"] = summary.automation.model_dump()
        paths["json"].parent.mkdir(parents=True, exist_ok=True)
        images = draw_plots(report, probs, truth, paths, options.plots)
        write_manifest(updated, options.bundle)
        paths["json"].write_text(json.dumps(report, indent=2) + "\n")
        markdown = to_markdown(report, images)
        if summary.automation is not None:
            markdown += "\n" + automation_markdown(report["automation"])  # type: ignore[arg-type]
        paths["markdown"].write_text(markdown)
    print_report(report)
    if summary.automation is not None:
        _print_automation(summary.automation)
    print(
        f"thresholds ({selection.chosen}) written to {options.bundle / 'bundle.json'}; report: "
        + ", ".join(report["files"].values())  # type: ignore[attr-defined]
    )
    return report
