"""The report's pictures (matplotlib, export side only): F1-vs-threshold curves, reliability."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration.cuts import BoolArray, FloatArray, f1_from_counts
from export.calibration.reliability import reliability


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # the export extra carries it
        raise RuntimeError("matplotlib is missing: pip install '.[export]'") from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def f1_by_threshold(probs: FloatArray, truth: BoolArray, grid: FloatArray) -> FloatArray:
    """F1 of ``probs >= t`` for every ``t`` in ``grid`` (1-D inputs)."""
    predicted = probs[:, None] >= grid[None, :]
    truth = truth[:, None]
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    return f1_from_counts(tp, fp, fn)


def micro_by_threshold(
    column: FloatArray, predicted: BoolArray, truth: BoolArray, c: int, grid: FloatArray
) -> FloatArray:
    """Micro-F1 of all classes as class ``c``'s threshold sweeps ``grid``, others fixed."""
    others = np.delete(np.arange(truth.shape[1]), c)
    tp = float((predicted[:, others] & truth[:, others]).sum())
    fp = float((predicted[:, others] & ~truth[:, others]).sum())
    fn = float((~predicted[:, others] & truth[:, others]).sum())
    mine = column[:, None] >= grid[None, :]
    t = truth[:, c][:, None]
    return f1_from_counts(
        tp + (mine & t).sum(axis=0), fp + (mine & ~t).sum(axis=0), fn + (~mine & t).sum(axis=0)
    )


def plot_f1_curves(report: dict[str, Any], probs: FloatArray, truth: BoolArray, path: Path) -> Path:
    """One panel per class: validation F1 of the class (blue) and micro-F1 of all classes (green,
    what the per-class cuts maximise) against the class's threshold, the shipped cut marked."""
    plt = _pyplot()
    classes = report["classes"]
    columns = min(3, len(classes))
    rows = math.ceil(len(classes) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False, sharey=True
    )
    grid = np.linspace(0.0, 1.0, 501)
    shipped = np.asarray([row["threshold"] for row in classes])
    predicted = probs >= shipped[None, :]
    for c, row in enumerate(classes):
        ax = axes[c // columns][c % columns]
        ax.plot(grid, f1_by_threshold(probs[:, c], truth[:, c], grid), color="tab:blue", lw=1.2)
        ax.plot(
            grid,
            micro_by_threshold(probs[:, c], predicted, truth, c, grid),
            color="tab:green",
            lw=1.0,
            label="micro-F1 (others as shipped)" if c == 0 else None,
        )
        ax.axvline(0.5, color="0.6", lw=0.8, ls=":", label="0.5")
        ax.axvline(row["global_threshold"], color="0.4", lw=0.8, ls="--", label="global")
        if row["own_threshold"] != row["threshold"]:
            ax.axvline(row["own_threshold"], color="tab:orange", lw=0.8, ls="-.", label="own cut")
        ax.axvline(row["threshold"], color="tab:red", lw=1.5, label="shipped")
        oof = row["oof_f1_shipped"]
        ax.set_title(
            f"{row['label'][:38]}\nn+={row['support']}  t={row['threshold']:.3f}  "
            f"OOF F1 {oof['estimate']:.2f} [{oof['low']:.2f}, {oof['high']:.2f}]",
            fontsize=8,
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        if c == 0:
            ax.legend(fontsize=6, loc="lower left")
    for c in range(len(classes), rows * columns):
        axes[c // columns][c % columns].axis("off")
    fig.supxlabel("threshold (validation split)", fontsize=9)
    fig.supylabel("F1", fontsize=9)
    fig.suptitle(f"F1 vs threshold, shipped option: {report['shipped']['option']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(
    report: dict[str, Any], probs: FloatArray, truth: BoolArray, path: Path
) -> Path:
    """Predicted probability vs observed frequency (pooled, and faint per class) + histogram."""
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.0, 6.0), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8, label="perfectly calibrated")
    for c in range(truth.shape[1]):
        curve = reliability(probs[:, c], truth[:, c])
        ax.plot(curve.mean_predicted, curve.observed, color="tab:blue", alpha=0.2, lw=0.8)
    pooled = reliability(probs, truth)
    ax.plot(pooled.mean_predicted, pooled.observed, "o-", color="tab:blue", label="all classes")
    ax.set_ylabel("observed frequency of the label")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(
        f"Reliability (validation, {truth.shape[0]} documents); "
        f"ECE {pooled.expected_calibration_error:.3f}",
        fontsize=9,
    )
    hist.bar(
        pooled.edges[:-1], pooled.count, width=np.diff(pooled.edges), align="edge", color="0.7"
    )
    hist.set_yscale("log")
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("predictions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_abstain(
    confidence: FloatArray, correct: BoolArray, threshold: float, target: float, path: Path
) -> Path:
    """Single-label abstention: precision among answered texts and coverage against the cut on
    the top probability, the target precision and the shipped threshold marked."""
    plt = _pyplot()
    grid = np.linspace(0.0, 1.0, 201)
    answered = confidence[:, None] >= grid[None, :]
    count = answered.sum(axis=0)
    hits = (answered & correct[:, None]).sum(axis=0)
    precision = np.divide(hits, count, out=np.full(grid.shape, np.nan), where=count > 0)
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot(grid, precision, color="tab:green", label="precision among answered")
    ax.plot(grid, count / max(len(correct), 1), color="tab:blue", label="coverage (answered)")
    ax.axhline(target, color="0.6", ls="--", lw=0.8, label=f"target precision {target:g}")
    ax.axvline(threshold, color="tab:red", lw=1.0, label=f"shipped cut {threshold:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("abstain threshold on the top probability")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"Abstention (validation, {len(correct)} texts)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
