"""Single-label abstention: answer only when the top probability reaches a threshold chosen for a
stated precision, estimated out of fold like the multi-label options.

``correct[i]`` says whether the model's top class was right on document ``i`` and
``confidence[i]`` is that class's probability. The threshold is the lowest cut (most answers)
whose precision among the answered documents reaches ``target``, placed at a midpoint between
observed confidences. Not wired to a bundle yet: single-label bundles do not exist so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.calibration.bootstrap import Interval, resample_weights
from export.calibration.cuts import BoolArray, FloatArray, f1_curve
from export.calibration.folds import stratified_folds
from export.calibration.options import Settings


def abstain_threshold(confidence: FloatArray, correct: BoolArray, target: float) -> float:
    """Lowest midpoint cut with precision >= ``target`` among answered; above every confidence
    (always abstain) when no cut reaches it."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target precision must be in (0, 1], got {target}")
    curve = f1_curve(confidence, correct)
    answered = curve.tp + curve.fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(answered > 0, curve.tp / answered, 0.0)
    reaching = np.flatnonzero((precision >= target) & (answered > 0))
    if not reaching.size:
        return float(curve.thresholds[0])  # the cut that answers nothing (or the highest)
    return float(curve.thresholds[reaching[-1]])  # thresholds descend: last = most answers


@dataclass(frozen=True)
class AbstainEstimate:
    threshold: float  # fitted on all the data
    target: float
    precision: float  # in-sample
    coverage: float
    oof_precision: Interval  # precision among answered, out of fold
    oof_coverage: float


def _precision(weights: FloatArray, answered: BoolArray, correct: BoolArray) -> FloatArray:
    hits = weights @ (answered & correct).astype(np.float64)
    total = weights @ answered.astype(np.float64)
    return np.divide(hits, total, out=np.zeros_like(total), where=total > 0)


def estimate_abstain(
    confidence: FloatArray, correct: BoolArray, target: float, settings: Settings | None = None
) -> AbstainEstimate:
    """Cross-validated precision and coverage of the abstain rule, then the rule on all data."""
    settings = settings or Settings()
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    folds = stratified_folds(np.stack([correct, ~correct], axis=1), settings.folds, settings.seed)
    answered = np.zeros(correct.shape, dtype=bool)
    for fold in range(settings.folds):
        held, train = folds == fold, folds != fold
        answered[held] = confidence[held] >= abstain_threshold(
            confidence[train], correct[train], target
        )
    weights = resample_weights(correct.size, settings.draws, settings.seed)
    point = _precision(np.ones((1, correct.size)), answered, correct)[0]
    threshold = abstain_threshold(confidence, correct, target)
    fitted = confidence >= threshold
    return AbstainEstimate(
        threshold=threshold,
        target=target,
        precision=float(_precision(np.ones((1, correct.size)), fitted, correct)[0]),
        coverage=float(fitted.mean()),
        oof_precision=Interval.of(point, _precision(weights, answered, correct)),
        oof_coverage=float(answered.mean()),
    )
