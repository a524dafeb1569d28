"""Bootstrap over documents: how much an F1 figure moves when the validation split is resampled.

Resampling is expressed as a count matrix ``weights[draw, doc]`` (how often each document is drawn),
so the confusion counts of every draw are one matrix product with the per-document counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.calibration.cuts import BoolArray, FloatArray, f1_from_counts


def resample_weights(documents: int, draws: int, seed: int) -> FloatArray:
    """[draws, documents] multiplicities of a seeded bootstrap (each row sums to ``documents``)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, documents, size=(draws, documents))
    flat = (np.arange(draws)[:, None] * documents + picks).ravel()
    counts = np.bincount(flat, minlength=draws * documents)
    return counts.reshape(draws, documents).astype(np.float64)


def per_class_f1(weights: FloatArray, predicted: BoolArray, truth: BoolArray) -> FloatArray:
    """[draws, classes] F1 of each class under each resampling."""
    tp = weights @ (predicted & truth).astype(np.float64)
    fp = weights @ (predicted & ~truth).astype(np.float64)
    fn = weights @ (~predicted & truth).astype(np.float64)
    return f1_from_counts(tp, fp, fn)


def micro_f1(weights: FloatArray, predicted: BoolArray, truth: BoolArray) -> FloatArray:
    """[draws] micro-F1 (counts pooled over classes) under each resampling."""
    tp = weights @ (predicted & truth).sum(axis=1).astype(np.float64)
    fp = weights @ (predicted & ~truth).sum(axis=1).astype(np.float64)
    fn = weights @ (~predicted & truth).sum(axis=1).astype(np.float64)
    return f1_from_counts(tp, fp, fn)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap standard deviation and 95% percentile interval."""

    estimate: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, estimate: float, draws: FloatArray) -> Interval:
        low, high = np.percentile(draws, [2.5, 97.5])
        return cls(float(estimate), float(np.std(draws)), float(low), float(high))


def prediction_interval(estimate: Interval, documents: int, new_documents: int) -> Interval:
    """Where a fresh split of ``new_documents`` should score: the estimate's own uncertainty plus
    that split's sampling noise (an F1's bootstrap variance scales as 1 / documents), 95%."""
    sd = estimate.sd * float(np.sqrt(1 + documents / new_documents))
    return Interval(
        estimate.estimate, sd, estimate.estimate - 1.96 * sd, estimate.estimate + 1.96 * sd
    )
