"""Per-class decision thresholds for multi-label classifiers, tuned for F1 (pure numpy).

A class predicts positive when its probability is >= its threshold. For each class the threshold
maximising that class's F1 on a validation split is chosen among the observed probabilities; ties
go to the highest such threshold (fewest positives). Classes with fewer than ``min_support``
positives get the global threshold, itself tuned for micro-F1 over all classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def best_f1_threshold(probs: FloatArray, truth: BoolArray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``probs >= threshold`` over the candidates ``probs``."""
    if probs.size == 0 or not truth.any():
        return 1.0, 0.0
    order = np.argsort(-probs, kind="stable")
    sorted_probs, sorted_truth = probs[order], truth[order]
    true_pos = np.cumsum(sorted_truth)
    false_pos = np.cumsum(~sorted_truth)
    # Only the last index of each run of equal probabilities is a reachable cut.
    last_of_run = np.append(sorted_probs[1:] != sorted_probs[:-1], True)
    tp, fp = true_pos[last_of_run], false_pos[last_of_run]
    f1 = 2 * tp / (2 * tp + fp + (truth.sum() - tp))
    best = int(np.flatnonzero(f1 == f1.max())[0])  # highest threshold among ties
    return float(sorted_probs[last_of_run][best]), float(f1[best])


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


def prf(predicted: BoolArray, truth: BoolArray) -> Scores:
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return Scores(precision, recall, f1)


def micro_macro(probs: FloatArray, truth: BoolArray, thresholds: FloatArray) -> tuple[float, float]:
    predicted = probs >= thresholds[None, :]
    micro = prf(predicted, truth).f1
    macro = float(np.mean([prf(predicted[:, c], truth[:, c]).f1 for c in range(truth.shape[1])]))
    return micro, macro


@dataclass(frozen=True)
class Calibration:
    thresholds: FloatArray
    global_threshold: float
    fallback: BoolArray  # classes that got the global threshold (too few positives)


def calibrate(probs: FloatArray, truth: BoolArray, min_support: int = 5) -> Calibration:
    """Per-class F1-optimal thresholds; rare classes fall back to the micro-F1 global one."""
    if probs.shape != truth.shape or probs.ndim != 2:
        raise ValueError(
            f"probs {probs.shape} and labels {truth.shape} must both be [docs, classes]"
        )
    global_threshold, _ = best_f1_threshold(probs.ravel(), truth.ravel())
    thresholds = np.empty(probs.shape[1])
    fallback = truth.sum(axis=0) < min_support
    for c in range(probs.shape[1]):
        thresholds[c] = (
            global_threshold if fallback[c] else best_f1_threshold(probs[:, c], truth[:, c])[0]
        )
    return Calibration(thresholds, global_threshold, fallback)
