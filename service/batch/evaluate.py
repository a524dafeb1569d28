"""Micro/macro F1 per class with bootstrap confidence intervals (numpy only: no scikit-learn).

Each record contributes sets of gold and predicted units (entities as (type, first word, last
word), or postures); a unit counts as a true positive only when the same unit is in both, as in
seqeval. Intervals resample records with replacement (percentile method, fixed seed, the class
list fixed from the full sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.batch.models import Unit

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass
class Tally:
    """Per-record counts of true positives, false positives and false negatives per class."""

    rows: list[dict[str, tuple[int, int, int]]] = field(default_factory=list)

    def add(self, gold: set[Unit], predicted: set[Unit]) -> None:
        counts: dict[str, list[int]] = {}
        for unit in predicted:
            counts.setdefault(unit[0], [0, 0, 0])[0 if unit in gold else 1] += 1
        for unit in gold - predicted:
            counts.setdefault(unit[0], [0, 0, 0])[2] += 1
        self.rows.append({c: (v[0], v[1], v[2]) for c, v in counts.items()})


def _f1(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> FloatArray:
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _scores(sums: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """sums [..., classes, 3] -> (micro F1 [...], macro F1 [...], per-class F1 [..., classes])."""
    per_class = _f1(sums[..., 0], sums[..., 1], sums[..., 2])
    total = sums.sum(axis=-2)
    micro = _f1(total[..., 0], total[..., 1], total[..., 2])
    return micro, per_class.mean(axis=-1), per_class


def evaluate(
    tally: Tally,
    classes: list[str] | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """F1 figures with intervals; ``classes`` None means every class seen in gold or predictions."""
    names = classes or sorted({c for row in tally.rows for c in row})
    index = {c: i for i, c in enumerate(names)}
    counts = np.zeros((len(tally.rows), len(names), 3))
    for r, row in enumerate(tally.rows):
        for c, values in row.items():
            if c in index:
                counts[r, index[c]] = values
    sums = counts.sum(axis=0)
    micro, macro, per_class = _scores(sums)
    low_q, high_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    rng = np.random.default_rng(seed)
    boot_micro, boot_macro, boot_class = [], [], []
    n = len(tally.rows)
    flat = counts.reshape(n, -1)
    for begin in range(0, resamples if n else 0, 100):
        size = min(100, resamples - begin)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        m, a, p = _scores((weights @ flat).reshape(size, len(names), 3))
        boot_micro.append(m)
        boot_macro.append(a)
        boot_class.append(p)

    def interval(samples: list[FloatArray], axis_value: int | None = None) -> list[float]:
        if not samples:
            return [float("nan"), float("nan")]
        values = np.concatenate(samples)
        if axis_value is not None:
            values = values[:, axis_value]
        low, high = np.quantile(values, [low_q, high_q])
        return [round(float(low), 4), round(float(high), 4)]

    return {
        "records": n,
        "confidence": confidence,
        "resamples": resamples,
        "micro_f1": round(float(micro), 4),
        "micro_f1_ci": interval(boot_micro),
        "macro_f1": round(float(macro), 4),
        "macro_f1_ci": interval(boot_macro),
        "per_class": {
            c: {
                "f1": round(float(per_class[i]), 4),
                "f1_ci": interval(boot_class, i),
                "support": int(sums[i, 0] + sums[i, 2]),
                "predicted": int(sums[i, 0] + sums[i, 1]),
                "true_positives": int(sums[i, 0]),
            }
            for i, c in enumerate(names)
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """A small table for the terminal."""
    pct = int(report["confidence"] * 100)
    lines = [
        f"{'class':<40} {'support':>8} {'F1':>7}  {pct}% CI",
    ]
    for name, row in report["per_class"].items():
        low, high = row["f1_ci"]
        lines.append(f"{name:<40} {row['support']:>8} {row['f1']:>7.4f}  [{low:.4f}, {high:.4f}]")
    for kind in ("micro", "macro"):
        low, high = report[f"{kind}_f1_ci"]
        lines.append(
            f"{kind + ' F1':<40} {report['records']:>8} {report[kind + '_f1']:>7.4f}"
            f"  [{low:.4f}, {high:.4f}]"
        )
    return "\n".join(lines)
