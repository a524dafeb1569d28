"""The span calibration's report: JSON (data), Markdown (people), PNG (F1 against the cut)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration.bootstrap import Interval
from export.calibration.options import OPTIONS
from export.calibration.report import DESCRIPTIONS
from families.span.thresholds import GRID, HALF, SpanSelection, at_cuts


def _r(x: float) -> float:
    return round(float(x), 6)


def _interval(x: Interval) -> dict[str, float]:
    return {"estimate": _r(x.estimate), "sd": _r(x.sd), "low": _r(x.low), "high": _r(x.high)}


def _prf(counts: np.ndarray) -> dict[str, float]:
    tp, fp, fn = (float(x) for x in counts)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"precision": _r(precision), "recall": _r(recall), "f1": _r(f1)}


def build_report(
    selection: SpanSelection, labels: list[str], counts: np.ndarray, context: dict[str, object]
) -> dict[str, object]:
    shipped = selection.cuts[selection.chosen]
    glob = int(selection.cuts["global"][0])
    summary = {
        name: {
            "description": DESCRIPTIONS[name],
            "thresholds": {
                label: _r(GRID[c]) for label, c in zip(labels, selection.cuts[name], strict=True)
            },
            "micro_f1": _r(option.validation_micro_f1),
            "macro_f1": _r(option.validation_macro_f1),
            "oof_micro_f1": _interval(option.oof_micro_f1),
            "oof_macro_f1": _r(option.oof_macro_f1),
            "shipped": name == selection.chosen,
        }
        for name, option in selection.options.items()
    }
    per_type = counts.sum(axis=0)  # [types, grid, 3]
    types = []
    for t, label in enumerate(labels):
        decision = selection.decisions[t]
        types.append(
            {
                "label": label,
                "support": decision.support,
                "threshold": _r(GRID[shipped[t]]),
                "own_threshold": _r(GRID[decision.own_cut]),
                "global_threshold": _r(GRID[glob]),
                "per_class_decision": "own" if decision.own else "global",
                "reason": decision.reason,
                "at_0.5": _prf(per_type[t, HALF]),
                "at_threshold": _prf(per_type[t, shipped[t]]),
                "oof_f1_shipped": _interval(selection.options[selection.chosen].oof_class_f1[t]),
                "oof_gain_own_vs_global": _interval(decision.gain),
                "f1_by_grid": [_prf(per_type[t, g])["f1"] for g in range(len(GRID))],
            }
        )
    return {
        **context,
        "documents": int(counts.shape[0]),
        "grid": [_r(g) for g in GRID],
        "rule": "one cut per type, used for its start, end and inside probabilities",
        "settings": asdict(selection.settings),
        "fold_sizes": np.bincount(selection.folds).tolist(),
        "shipped": {
            "option": selection.chosen,
            "reason": selection.reason,
            "thresholds": {label: _r(GRID[c]) for label, c in zip(labels, shipped, strict=True)},
            "micro": _prf(at_cuts(counts, shipped).sum(axis=(0, 1))),
        },
        "summary": summary,
        "types": types,
    }


def _ci(x: dict[str, float]) -> str:
    return f"{x['estimate']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"


def to_markdown(report: dict[str, Any], images: dict[str, Path]) -> str:
    shipped, settings = report["shipped"], report["settings"]
    out = [
        f"# Span calibration report: {report.get('bundle', '')}",
        "",
        f"Data: `{report.get('data', '')}`, {report['documents']} documents; "
        f"{settings['folds']}-fold stratified cross-validation (fold sizes "
        f"{report['fold_sizes']}), {settings['draws']} bootstrap resamplings, seed "
        f"{settings['seed']}. Rule: {report['rule']}; cuts searched on a grid of 0.02 steps; "
        "spans count as found only when type and both character offsets match exactly.",
        "",
        f"**Shipped: `{shipped['option']}`**. {shipped['reason']}.",
        "",
        "| option | thresholds | validation micro-F1 | out-of-fold micro-F1 (95% interval) |",
        "|---|---|---:|---:|",
    ]
    for name in OPTIONS:
        row = report["summary"][name]
        mark = " **(shipped)**" if row["shipped"] else ""
        cuts = ", ".join(f"{k} {v:.2f}" for k, v in row["thresholds"].items())
        out.append(
            f"| `{name}`{mark} | {cuts} | {row['micro_f1']:.3f} | {_ci(row['oof_micro_f1'])} |"
        )
    out += [
        "",
        "## Per type",
        "",
        "| type | gold spans | shipped cut | own cut | P / R / F1 at 0.5 | P / R / F1 at cut | "
        "OOF F1 shipped | decision |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["types"]:
        a, b = row["at_0.5"], row["at_threshold"]
        out.append(
            f"| {row['label']} | {row['support']} | {row['threshold']:.2f} | "
            f"{row['own_threshold']:.2f} | {a['precision']:.2f} / {a['recall']:.2f} / "
            f"{a['f1']:.3f} | {b['precision']:.2f} / {b['recall']:.2f} / {b['f1']:.3f} | "
            f"{_ci(row['oof_f1_shipped'])} | {row['reason']} |"
        )
    if report.get("unknown_labels"):
        out += ["", f"Types in the data the model does not have (ignored): "
                f"{report['unknown_labels']}."]  # fmt: skip
    for title, path in images.items():
        out += ["", f"![{title}]({path.name})"]
    return "\n".join(out) + "\n"


def plot_f1_by_cut(report: dict[str, Any], path: Path) -> Path:
    """Validation span F1 of every type against its cut; the shipped cut marked."""
    from export.calibration.plots import _pyplot

    plt = _pyplot()
    rows = report["types"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.0 * len(rows), 3.0), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        ax.plot(report["grid"], row["f1_by_grid"], color="tab:blue", lw=1.2)
        ax.axvline(0.5, color="0.6", lw=0.8, ls=":", label="0.5")
        ax.axvline(row["global_threshold"], color="0.4", lw=0.8, ls="--", label="global")
        ax.axvline(row["threshold"], color="tab:red", lw=1.5, label="shipped")
        ax.set_title(f"{row['label']}  n={row['support']}  cut={row['threshold']:.2f}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("cut (start = end = inside)", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("span F1 (validation)", fontsize=7)
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
