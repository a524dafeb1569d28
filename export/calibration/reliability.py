"""Reliability (calibration) curve: mean predicted probability vs observed frequency per bin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.calibration.cuts import BoolArray, FloatArray


@dataclass(frozen=True)
class Reliability:
    edges: FloatArray  # bins+1 edges over [0, 1]
    count: FloatArray  # predictions per bin
    mean_predicted: FloatArray  # nan where a bin is empty
    observed: FloatArray  # fraction of positives per bin, nan where empty

    @property
    def expected_calibration_error(self) -> float:
        """Count-weighted mean |observed - predicted| over the non-empty bins."""
        full = self.count > 0
        gaps = np.abs(self.observed[full] - self.mean_predicted[full])
        return float((gaps * self.count[full]).sum() / self.count[full].sum())


def reliability(probs: FloatArray, truth: BoolArray, bins: int = 10) -> Reliability:
    """Equal-width bins of the predicted probability (all classes pooled unless given one)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    sums = np.bincount(which, weights=p, minlength=bins)
    positives = np.bincount(which, weights=t, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, sums / count, np.nan)
        observed = np.where(count > 0, positives / count, np.nan)
    return Reliability(edges, count, mean, observed)
