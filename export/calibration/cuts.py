"""Every cut of a score list, its F1, and a threshold placed between observed probabilities.

A class predicts positive when its probability is >= its threshold. Between two consecutive
distinct probabilities every threshold makes the same decisions on the data it was tuned on, so
the threshold is put at the midpoint of that gap: as far as possible from both neighbours, never
exactly on an observed (overfit) value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


def f1_from_counts(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> FloatArray:
    """F1 = 2tp / (2tp + fp + fn), 0 where nothing is predicted or true (scikit-learn's default)."""
    tp_, fp_, fn_ = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    denominator = 2 * tp_ + fp_ + fn_
    return np.divide(2 * tp_, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def midpoint(upper: float, lower: float) -> float:
    """A threshold in (lower, upper]: their midpoint, or ``upper`` if no float lies between."""
    return float(midpoints(np.asarray([upper]), np.asarray([lower]))[0])


def midpoints(upper: FloatArray, lower: FloatArray) -> FloatArray:
    """Element-wise :func:`midpoint`."""
    middle = upper / 2 + lower / 2
    return np.where((lower < middle) & (middle <= upper), middle, upper)


@dataclass(frozen=True)
class Curve:
    """All distinct cuts of one score list, highest threshold first.

    ``thresholds[j]`` predicts positive exactly the items with probability >= it; the first cut
    predicts nothing (absent when the highest probability is 1.0, where no such threshold <= 1
    exists), the last predicts everything.
    """

    thresholds: FloatArray
    tp: FloatArray
    fp: FloatArray
    fn: FloatArray

    @property
    def f1(self) -> FloatArray:
        return f1_from_counts(self.tp, self.fp, self.fn)


def f1_curve(probs: FloatArray, truth: BoolArray) -> Curve:
    """The confusion counts of every distinct cut of ``probs`` (1-D), thresholds at midpoints."""
    probs = np.asarray(probs, dtype=np.float64).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    if probs.shape != truth.shape or probs.size == 0:
        raise ValueError(f"need as many probabilities as labels, at least one ({probs.shape})")
    order = np.argsort(-probs, kind="stable")
    sorted_probs, sorted_truth = probs[order], truth[order]
    last_of_run = np.append(sorted_probs[1:] != sorted_probs[:-1], True)
    distinct = sorted_probs[last_of_run]  # descending
    tp = np.cumsum(sorted_truth)[last_of_run].astype(np.float64)
    fp = np.cumsum(~sorted_truth)[last_of_run].astype(np.float64)
    below = np.append(distinct[1:], 0.0)
    thresholds = midpoints(distinct, below)
    if distinct[0] < 1.0:  # the cut that predicts nothing
        thresholds = np.insert(thresholds, 0, midpoint(1.0, float(distinct[0])))
        tp, fp = np.insert(tp, 0, 0.0), np.insert(fp, 0, 0.0)
    positives = float(truth.sum())
    return Curve(thresholds, tp, fp, positives - tp)


def best_cut(probs: FloatArray, truth: BoolArray) -> tuple[float, float]:
    """(threshold, F1) of the F1-maximising cut; ties go to the highest threshold."""
    curve = f1_curve(probs, truth)
    f1 = curve.f1
    best = int(np.flatnonzero(f1 == f1.max())[0])
    return float(curve.thresholds[best]), float(f1[best])


def snap_to_gap(threshold: float, probs: FloatArray) -> float:
    """The midpoint of the gap between observed probabilities that ``threshold`` falls in.

    Decisions on ``probs`` are unchanged (the same items stay >= the threshold).
    """
    values = np.unique(np.asarray(probs, dtype=np.float64))  # ascending
    above = values[values >= threshold]
    below = values[values < threshold]
    lower = float(below[-1]) if below.size else 0.0
    if not above.size:
        return midpoint(1.0, lower) if lower < 1.0 else threshold
    return midpoint(float(above[0]), lower)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


def prf(predicted: BoolArray, truth: BoolArray) -> Scores:
    """Precision, recall, F1 of boolean predictions (any shape, pooled)."""
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return Scores(precision, recall, float(f1_from_counts(tp, fp, fn)), int(truth.sum()))


def micro_macro(probs: FloatArray, truth: BoolArray, thresholds: FloatArray) -> tuple[float, float]:
    """Micro- and macro-F1 of ``probs >= thresholds`` (one threshold per column)."""
    return micro_macro_of(probs >= np.asarray(thresholds)[None, :], truth)


def micro_macro_of(predicted: BoolArray, truth: BoolArray) -> tuple[float, float]:
    micro = prf(predicted, truth).f1
    macro = float(np.mean([prf(predicted[:, c], truth[:, c]).f1 for c in range(truth.shape[1])]))
    return micro, macro
