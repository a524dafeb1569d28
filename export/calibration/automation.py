"""Per-class automation: validated precision / recall / F1 with out-of-fold 95% intervals, the
``automate`` flag and the uncertainty band around each threshold (pure numpy).

Rules (also in docs/tfidf.md):
- **Out-of-fold quality.** The validation documents are cut into stratified folds
  (:func:`export.calibration.folds.stratified_folds`); each class's threshold is tuned on the other
  folds (the F1-maximising cut, :func:`export.calibration.cuts.best_cut`) and applied to the held
  fold, so every document gets a prediction no threshold saw. Precision, recall and F1 of those
  predictions, with a 95% percentile interval from a document bootstrap
  (:mod:`export.calibration.bootstrap`).
- **automate** is true when the F1 interval's low end reaches the target (``--automation-f1``,
  default 0.63: the human agreement level) and the band below can reach the target precision.
- **Band.** For the shipped threshold ``t`` of an automated class, ``band_high`` is the lowest
  cut ``u >= t`` such that the validation labels with probability ``>= u`` reach the target
  precision (placed midway between observed probabilities); ``band_low = max(0, 2t - u)`` (the same
  width below). Labels at or above ``band_high`` are issued automatically; probabilities in
  ``[band_low, band_high)`` go to a person. No band (``u = t``) where the threshold's own labels
  already reach the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.calibration.bootstrap import Interval, resample_weights
from export.calibration.cuts import BoolArray, FloatArray, best_cut, f1_from_counts, midpoint
from export.calibration.folds import stratified_folds
from service.review import AutomationSummary, ClassAutomation, Estimate, review, review_rate

DEFAULT_AUTOMATION_F1 = 0.63
DEFAULT_TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class AutomationSettings:
    target_f1: float = DEFAULT_AUTOMATION_F1
    target_precision: float = DEFAULT_TARGET_PRECISION
    folds: int = 5
    seed: int = 0
    draws: int = 1000


def out_of_fold_predictions(probs: FloatArray, truth: BoolArray, fold: np.ndarray) -> BoolArray:
    """Each document's decision under per-class thresholds tuned on the other folds."""
    predicted = np.zeros(truth.shape, dtype=bool)
    for f in np.unique(fold):
        held, rest = fold == f, fold != f
        for c in range(truth.shape[1]):
            threshold, _ = best_cut(probs[rest, c], truth[rest, c])
            predicted[held, c] = probs[held, c] >= threshold
    return predicted


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(den), where=den > 0)


def class_quality(
    predicted: BoolArray, truth: BoolArray, draws: int, seed: int
) -> list[tuple[Estimate, Estimate, Estimate]]:
    """Per class (precision, recall, F1) of ``predicted`` with bootstrap 95% intervals."""
    weights = np.vstack([np.ones(truth.shape[0]), resample_weights(truth.shape[0], draws, seed)])
    tp = weights @ (predicted & truth).astype(np.float64)  # [1 + draws, classes]
    fp = weights @ (predicted & ~truth).astype(np.float64)
    fn = weights @ (~predicted & truth).astype(np.float64)
    figures = (_ratio(tp, tp + fp), _ratio(tp, tp + fn), f1_from_counts(tp, fp, fn))
    out = []
    for c in range(truth.shape[1]):
        estimates = []
        for values in figures:
            interval = Interval.of(float(values[0, c]), values[1:, c])
            estimates.append(
                Estimate(
                    value=interval.estimate,
                    low=float(np.clip(interval.low, 0, 1)),
                    high=float(np.clip(interval.high, 0, 1)),
                )
            )
        out.append((estimates[0], estimates[1], estimates[2]))
    return out


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    reached: bool  # the target precision is reachable above some cut
    precision: float | None  # of the labels issued automatically (>= high) on validation
    share: float | None  # of the threshold's labels issued automatically


def uncertainty_band(
    probs: FloatArray, truth: BoolArray, threshold: float, target_precision: float
) -> Band:
    """The band of one class (rule in the module docstring)."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    labelled = probs >= threshold
    if not labelled.any():
        return Band(threshold, threshold, True, None, None)
    order = np.argsort(-probs[labelled], kind="stable")
    p, y = probs[labelled][order], truth[labelled][order]
    last_of_run = np.append(p[1:] != p[:-1], True)
    precision = (np.cumsum(y) / np.arange(1, len(y) + 1))[last_of_run]
    distinct = p[last_of_run]  # descending, all >= threshold
    qualifying = np.flatnonzero(precision >= target_precision)
    if not qualifying.size:
        return Band(threshold, threshold, False, None, None)
    j = int(qualifying[-1])  # the lowest qualifying cut: the most labels issued
    if j == len(distinct) - 1:  # every label at the threshold already reaches the target
        high = threshold
    else:
        high = max(threshold, midpoint(float(distinct[j]), float(distinct[j + 1])))
    low = max(0.0, 2 * threshold - high)
    issued = p >= high
    return Band(
        low,
        high,
        True,
        float(y[issued].mean()) if issued.any() else None,
        float(issued.sum() / len(p)),
    )


def automation(
    probs: FloatArray,
    truth: BoolArray,
    thresholds: Sequence[float],
    labels: Sequence[str],
    settings: AutomationSettings | None = None,
) -> AutomationSummary:
    """The manifest's automation section from validation probabilities and truths."""
    settings = settings or AutomationSettings()
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if probs.shape != truth.shape or not probs.shape[1] == len(labels) == len(thresholds):
        raise ValueError("probabilities, truths, thresholds and labels must agree in shape")
    fold = stratified_folds(truth, settings.folds, settings.seed)
    predicted = out_of_fold_predictions(probs, truth, fold)
    quality = class_quality(predicted, truth, settings.draws, settings.seed)
    classes = []
    for c, (precision, recall, f1) in enumerate(quality):
        band = uncertainty_band(
            probs[:, c], truth[:, c], float(thresholds[c]), settings.target_precision
        )
        classes.append(
            ClassAutomation(
                label=labels[c],
                support=int(truth[:, c].sum()),
                precision=precision,
                recall=recall,
                f1=f1,
                automate=f1.low >= settings.target_f1 and band.reached,
                band_low=band.low,
                band_high=band.high,
                automated_precision=band.precision,
                automated_share=band.share,
            )
        )
    reviews = review(
        probs,
        labels,
        thresholds,
        [c.automate for c in classes],
        [c.band_low for c in classes],
        [c.band_high for c in classes],
    )
    return AutomationSummary(
        target_f1=settings.target_f1,
        target_precision=settings.target_precision,
        documents=int(truth.shape[0]),
        folds=settings.folds,
        seed=settings.seed,
        draws=settings.draws,
        classes=classes,
        review_rate=review_rate(reviews),
    )
