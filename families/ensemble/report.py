"""The ensemble's selection report: per class the weights, each member's and the ensemble's
out-of-fold F1 and the paired 95% interval of the gain (JSON, Markdown, PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration.automation import out_of_fold_predictions
from export.calibration.cuts import BoolArray, FloatArray, f1_from_counts
from export.calibration.folds import stratified_folds
from export.calibration.report import automation_markdown
from service.ensemble import EnsembleSpec


def _f1(predicted: BoolArray, truth: BoolArray) -> float:
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    return float(f1_from_counts(tp, fp, fn))


def build_report(
    spec: EnsembleSpec, member_probabilities: FloatArray, truth: BoolArray, documents: int
) -> dict[str, Any]:
    """Each member's out-of-fold F1 per class (its cut tuned on the other folds, the same folds
    as the selection) beside the ensemble's, the weights and the shipped source."""
    fold = stratified_folds(truth, spec.folds, spec.seed)
    names = [m.name for m in spec.members]
    singles = [out_of_fold_predictions(p, truth, fold) for p in member_probabilities]
    classes = []
    for c, combo in enumerate(spec.classes):
        classes.append(
            {
                "label": combo.label,
                "support": int(truth[:, c].sum()),
                "weights": dict(zip(names, combo.weights, strict=True)),
                "threshold": combo.threshold,
                "source": combo.source if combo.member is None else names[combo.member],
                "oof_f1_members": {
                    n: round(_f1(s[:, c], truth[:, c]), 4)
                    for n, s in zip(names, singles, strict=True)
                },
                "oof_f1_ensemble": round(combo.oof_f1_ensemble, 4),
                "oof_gain_95": [round(combo.oof_gain_low, 4), round(combo.oof_gain_high, 4)],
            }
        )
    return {
        "members": names,
        "validation": spec.validation,
        "documents": documents,
        "folds": spec.folds,
        "seed": spec.seed,
        "draws": spec.draws,
        "grid": spec.grid,
        "mixtures": sum(c.source == "ensemble" for c in spec.classes),
        "classes": classes,
        "automation": spec.automation.model_dump() if spec.automation else None,
    }


def to_markdown(report: dict[str, Any], image: str | None) -> str:
    names: list[str] = report["members"]
    head = "| class | support | weights | shipped | " + " | ".join(f"OOF F1 {n}" for n in names)
    lines = [
        f"# Ensemble of {', '.join(names)}",
        "",
        f"Weights chosen per class by {report['folds']}-fold cross-validation on "
        f"`{report['validation']}` ({report['documents']} documents, grid 1/{report['grid']}). "
        "A class ships a mixture only where the ensemble beat its best member out of fold with "
        f"the paired 95% interval ({report['draws']} bootstrap draws) above 0; "
        f"{report['mixtures']} of {len(report['classes'])} classes do.",
        "",
        head + " | OOF F1 ensemble | gain 95% |",
        "|" + "---|" * (6 + len(names)),
    ]
    for c in report["classes"]:
        weights = ", ".join(f"{w:g}" for w in c["weights"].values())
        members = " | ".join(f"{c['oof_f1_members'][n]:.3f}" for n in names)
        low, high = c["oof_gain_95"]
        lines.append(
            f"| {c['label']} | {c['support']} | {weights} | {c['source']} | {members} | "
            f"{c['oof_f1_ensemble']:.3f} | [{low:+.3f}, {high:+.3f}] |"
        )
    if image:
        lines += ["", f"![out-of-fold F1 per class]({image})"]
    text = "\n".join(lines) + "\n"
    if report.get("automation"):
        text += "\n" + automation_markdown(report["automation"])
    return text


def plot(report: dict[str, Any], path: Path) -> None:
    from export.calibration.plots import _pyplot

    plt = _pyplot()
    classes = report["classes"]
    names: list[str] = report["members"]
    x = np.arange(len(classes))
    width = 0.8 / (len(names) + 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(classes)), 4.0))
    for i, n in enumerate(names):
        ax.bar(x + i * width, [c["oof_f1_members"][n] for c in classes], width, label=n)
    ax.bar(
        x + len(names) * width,
        [c["oof_f1_ensemble"] for c in classes],
        width,
        label="ensemble",
        color="black",
    )
    ax.set_xticks(
        x + width * len(names) / 2, [c["label"] for c in classes], rotation=60, ha="right"
    )
    ax.set_ylabel("out-of-fold F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict[str, Any], json_path: Path, plots: bool) -> list[Path]:
    """The JSON, its Markdown beside it and (with ``plots``) the PNG; the paths written."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    written = [json_path]
    image = None
    if plots:
        png = json_path.with_suffix(".png")
        plot(report, png)
        image = png.name
        written.append(png)
    md = json_path.with_suffix(".md")
    md.write_text(to_markdown(report, image))
    written.append(md)
    return written
