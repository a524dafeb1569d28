"""The calibration report as data (JSON) and as text people read (Markdown)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration.bootstrap import Interval, prediction_interval
from export.calibration.cuts import BoolArray, FloatArray, prf
from export.calibration.options import OPTIONS
from export.calibration.reliability import reliability
from export.calibration.selection import Selection

DESCRIPTIONS = {
    "at_0.5": "0.5 for every class (doing nothing)",
    "global": "one threshold for all classes, tuned for micro-F1",
    "per_class": "own cut per class where it beats the global one out of fold, else global",
    "shrunk": "as per_class, each kept cut pulled towards the global one by support",
}


def _r(x: float) -> float:
    return round(float(x), 6)


def _interval(x: Interval) -> dict[str, float]:
    return {"estimate": _r(x.estimate), "sd": _r(x.sd), "low": _r(x.low), "high": _r(x.high)}


def _scores(predicted: BoolArray, truth: BoolArray) -> dict[str, float]:
    s = prf(predicted, truth)
    return {"precision": _r(s.precision), "recall": _r(s.recall), "f1": _r(s.f1)}


def _threshold_shown(selection: Selection, name: str) -> float | str:
    if name == "at_0.5":
        return 0.5
    if name == "global":
        return _r(selection.options["global"].thresholds[0])
    return "per class"


def build_report(
    selection: Selection,
    labels: list[str],
    probs: FloatArray,
    truth: BoolArray,
    context: dict[str, object],
) -> dict[str, object]:
    """Everything the Markdown, the plots and a reviewer need; ``context`` adds data/bundle."""
    shipped = selection.shipped
    glob = selection.options["global"].thresholds[0]
    summary = {}
    for name in OPTIONS:
        option = selection.options[name]
        summary[name] = {
            "description": DESCRIPTIONS[name],
            "threshold": _threshold_shown(selection, name),
            "thresholds": [_r(t) for t in option.thresholds],
            "micro_f1": _r(option.validation_micro_f1),
            "macro_f1": _r(option.validation_macro_f1),
            "oof_micro_f1": _interval(option.oof_micro_f1),
            "oof_macro_f1": _r(option.oof_macro_f1),
            "shipped": name == selection.chosen,
        }
    classes = []
    for c, label in enumerate(labels):
        decision = selection.decisions[c]
        threshold = shipped.thresholds[c]
        classes.append(
            {
                "label": label,
                "support": int(truth[:, c].sum()),
                "threshold": _r(threshold),
                "own_threshold": _r(decision.own_threshold),
                "global_threshold": _r(glob),
                "per_class_decision": "own" if decision.own else "global",
                "reason": decision.reason,
                "fallback_to_global": not decision.own,
                "at_0.5": _scores(probs[:, c] >= 0.5, truth[:, c]),
                "at_threshold": _scores(probs[:, c] >= threshold, truth[:, c]),
                "oof_f1_shipped": _interval(shipped.oof_class_f1[c]),
                "oof_f1_own": _interval(decision.oof_f1_own),
                "oof_f1_global": _interval(decision.oof_f1_global),
                "oof_gain_own_vs_global": _interval(decision.gain),
            }
        )
    curve = reliability(probs, truth)
    settings = asdict(selection.settings)
    return {
        **context,
        "documents": int(truth.shape[0]),
        "settings": settings,
        "fold_sizes": np.bincount(selection.folds).tolist(),
        "shipped": {
            "option": selection.chosen,
            "reason": selection.reason,
            "thresholds": {
                label: _r(t) for label, t in zip(labels, shipped.thresholds, strict=True)
            },
            "global_threshold": _r(selection.global_threshold),
        },
        "summary": summary,
        "classes": classes,
        "reliability": {
            "edges": [_r(e) for e in curve.edges],
            "count": [int(n) for n in curve.count],
            "mean_predicted": [None if np.isnan(x) else _r(x) for x in curve.mean_predicted],
            "observed": [None if np.isnan(x) else _r(x) for x in curve.observed],
            "expected_calibration_error": _r(curve.expected_calibration_error),
        },
    }


def _ci(x: dict[str, float]) -> str:
    return f"{x['estimate']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"


def _prf(x: dict[str, float]) -> str:
    return f"{x['precision']:.2f} / {x['recall']:.2f} / {x['f1']:.3f}"


def summary_table(
    report: dict[str, object], test: dict[str, float] | None = None, test_documents: int = 0
) -> str:
    """Markdown table: validation / out-of-fold (and test, when given) micro-F1 per option.

    With test figures, a column gives the 95% prediction interval for a split of
    ``test_documents``: the out-of-fold estimate's uncertainty plus that split's sampling noise.
    """
    summary: dict[str, dict[str, object]] = report["summary"]  # type: ignore[assignment]
    head = "| option | threshold | validation micro-F1 | out-of-fold micro-F1 (95% interval) |"
    rule = "|---|---:|---:|---:|"
    if test is not None:
        head += f" predicted for {test_documents} documents (95%) | test micro-F1 |"
        rule += "---:|---:|"
    lines = [head, rule]
    for name, row in summary.items():
        threshold = row["threshold"]
        shown = f"{threshold:.3f}" if isinstance(threshold, float) else str(threshold)
        mark = " **(shipped)**" if row["shipped"] else ""
        line = (
            f"| `{name}`{mark} | {shown} | {row['micro_f1']:.3f} | "
            f"{_ci(row['oof_micro_f1'])} |"  # type: ignore[arg-type]
        )
        if test is not None:
            oof: dict[str, float] = row["oof_micro_f1"]  # type: ignore[assignment]
            predicted = prediction_interval(
                Interval(oof["estimate"], oof["sd"], oof["low"], oof["high"]),
                int(report["documents"]),  # type: ignore[call-overload]
                test_documents,
            )
            line += f" [{predicted.low:.3f}, {predicted.high:.3f}] | {test[name]:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def to_markdown(report: dict[str, object], images: dict[str, Path] | None = None) -> str:
    shipped: dict[str, object] = report["shipped"]  # type: ignore[assignment]
    settings: dict[str, object] = report["settings"]  # type: ignore[assignment]
    out = [
        f"# Calibration report: {report.get('bundle', '')}",
        "",
        f"Data: `{report.get('data', '')}`, {report['documents']} documents; "
        f"{settings['folds']}-fold stratified cross-validation (fold sizes "
        f"{report['fold_sizes']}), {settings['draws']} bootstrap resamplings, seed "
        f"{settings['seed']}.",
        "",
        f"**Shipped: `{shipped['option']}`**. {shipped['reason']}.",
        "",
        "Validation figures are measured on the thresholds' own data (optimistic); out-of-fold "
        "figures come from thresholds tuned without the scored fold and estimate unseen data.",
        "",
        summary_table(report),
        "",
        "## Per class",
        "",
        "P / R / F1 on the validation split; out-of-fold F1 of the own cut and of the global "
        "threshold with 95% bootstrap intervals; the `per_class` option's decision.",
        "",
        "| label | support | shipped threshold | own cut | P / R / F1 at 0.5 | "
        "P / R / F1 at threshold | OOF F1 own | OOF F1 global | decision |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["classes"]:  # type: ignore[attr-defined]
        out.append(
            f"| {row['label']} | {row['support']} | {row['threshold']:.3f} | "
            f"{row['own_threshold']:.3f} | {_prf(row['at_0.5'])} | {_prf(row['at_threshold'])} | "
            f"{_ci(row['oof_f1_own'])} | {_ci(row['oof_f1_global'])} | {row['reason']} |"
        )
    curve: dict[str, object] = report["reliability"]  # type: ignore[assignment]
    out += [
        "",
        f"Expected calibration error (10 bins, all classes pooled): "
        f"{curve['expected_calibration_error']:.3f}.",
    ]
    unknown = report.get("unknown_labels")
    if unknown:
        out += ["", f"Labels in the data that the model does not have (ignored): {unknown}."]
    for title, path in (images or {}).items():
        out += ["", f"![{title}]({path.name})"]
    return "\n".join(out) + "\n"


def automation_markdown(automation: dict[str, Any]) -> str:
    """The per-class automation section of a report (an ``AutomationSummary`` dump)."""

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        "## Per-class automation and review band",
        "",
        f"A class is automated when its out-of-fold F1 interval low end reaches "
        f"{automation['target_f1']}. Review band `[band_low, band_high)`: labels at or above "
        f"`band_high` reach precision {automation['target_precision']} on validation, absences "
        f"below `band_low` a miss rate of at most {figure(automation.get('target_miss_rate'))} "
        "(docs/review.md).",
        "",
        "| class | support | F1 [95%] | automate | band | issued labels' precision | "
        "issued absences' miss rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in automation["classes"]:
        f1 = c["f1"]
        lines.append(
            f"| {c['label']} | {c['support']} | {f1['value']:.3f} [{f1['low']:.3f}, "
            f"{f1['high']:.3f}] | {'yes' if c['automate'] else 'no'} | "
            f"[{c['band_low']:.3f}, {c['band_high']:.3f}) | {figure(c['automated_precision'])} | "
            f"{figure(c.get('automated_miss_rate'))} |"
        )
    lines += [
        "",
        f"Validation review rate {automation['review_rate']:.3f}; documents issued without a "
        f"person: labels' precision {figure(automation.get('automated_precision'))}, absences' "
        f"miss rate {figure(automation.get('automated_miss_rate'))}.",
    ]
    oof = automation.get("oof")
    if oof:
        lines.append(
            f"Out of fold (each fold's band edges chosen on the other folds): review rate "
            f"{oof['review_rate']:.3f}, precision {figure(oof['automated_precision'])}, miss "
            f"rate {figure(oof['automated_miss_rate'])}."
        )
    return "\n".join(lines) + "\n"
