"""Per-class automation: validated precision / recall / F1 with out-of-fold 95% intervals, the
``automate`` flag and the uncertainty band around each threshold (pure numpy).

Rules (also in docs/review.md):
- **Out-of-fold quality.** The validation documents are cut into stratified folds
  (:func:`export.calibration.folds.stratified_folds`); each class's threshold is tuned on the other
  folds (the F1-maximising cut, :func:`export.calibration.cuts.best_cut`) and applied to the held
  fold, so every document gets a prediction no threshold saw. Precision, recall and F1 of those
  predictions, with a 95% percentile interval from a document bootstrap
  (:mod:`export.calibration.bootstrap`).
- **automate** is true when the F1 interval's low end reaches the target (``--automation-f1``,
  default 0.63: the human agreement level) and some cut at or above the threshold reaches the
  target precision (the band has an upper edge).
- **Band** around the shipped threshold ``t``: the probabilities where the decision is not
  trustworthy at the targets, each edge with its own rule, chosen on the validation documents and
  never wider than needed. ``band_high`` is the lowest cut ``u >= t`` such that the labels with
  probability ``>= u`` reach the target precision; ``band_low`` the highest cut ``l <= t`` such that
  the documents with probability ``< l`` hold at most the target miss rate of positives (false
  omission rate; default ``1 - target precision``). Both are placed midway between observed
  probabilities; ``u = t`` (``l = t``) where the threshold's own labels (absences) already reach the
  target. Labels at or above ``band_high`` and absences below ``band_low`` are issued without a
  person; probabilities in ``[band_low, band_high)`` go to one (``service.review``).
- **Out of fold**, the band's effect: each fold's edges chosen on the other folds, applied to the
  held fold at the shipped thresholds: review rate, precision of the labels and miss rate of the
  absences issued automatically (``AutomationSummary.oof``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.calibration.bootstrap import Interval, resample_weights
from export.calibration.cuts import BoolArray, FloatArray, best_cut, f1_from_counts, midpoint
from export.calibration.folds import stratified_folds
from service.review import (
    AutomationSummary,
    ClassAutomation,
    Estimate,
    OutOfFoldReview,
    automatic_decisions,
    review_flags,
)

DEFAULT_AUTOMATION_F1 = 0.63
DEFAULT_TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class AutomationSettings:
    target_f1: float = DEFAULT_AUTOMATION_F1
    target_precision: float = DEFAULT_TARGET_PRECISION
    target_miss_rate: float | None = None  # None: 1 - target_precision
    folds: int = 5
    seed: int = 0
    draws: int = 1000

    @property
    def miss_rate(self) -> float:
        return (
            1.0 - self.target_precision if self.target_miss_rate is None else self.target_miss_rate
        )


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
    miss_rate: float | None = None  # of the absences issued automatically (< low) on validation
    negative_share: float | None = None  # of the threshold's absences issued automatically


def upper_edge(
    probs: FloatArray, truth: BoolArray, threshold: float, target_precision: float
) -> tuple[float, bool, float | None, float | None]:
    """(band_high, reached, precision and share of the labels at or above it)."""
    labelled = probs >= threshold
    if not labelled.any():
        return threshold, True, None, None
    order = np.argsort(-probs[labelled], kind="stable")
    p, y = probs[labelled][order], truth[labelled][order]
    last_of_run = np.append(p[1:] != p[:-1], True)
    precision = (np.cumsum(y) / np.arange(1, len(y) + 1))[last_of_run]
    distinct = p[last_of_run]  # descending, all >= threshold
    qualifying = np.flatnonzero(precision >= target_precision)
    if not qualifying.size:
        return threshold, False, None, None
    j = int(qualifying[-1])  # the lowest qualifying cut: the most labels issued
    if j == len(distinct) - 1:  # every label at the threshold already reaches the target
        high = threshold
    else:
        high = max(threshold, midpoint(float(distinct[j]), float(distinct[j + 1])))
    issued = p >= high
    precision_issued = float(y[issued].mean()) if issued.any() else None
    return high, True, precision_issued, float(issued.sum() / len(p))


def lower_edge(
    probs: FloatArray, truth: BoolArray, threshold: float, target_miss_rate: float
) -> tuple[float, float | None, float | None]:
    """(band_low, miss rate and share of the absences below it): the highest cut ``l <= t`` whose
    absences (probability < l) hold at most ``target_miss_rate`` positives; 0 when none does."""
    absent = probs < threshold
    if not absent.any():
        return threshold, None, None
    order = np.argsort(probs[absent], kind="stable")
    p, y = probs[absent][order], truth[absent][order]
    last_of_run = np.append(p[1:] != p[:-1], True)
    miss = (np.cumsum(y) / np.arange(1, len(y) + 1))[last_of_run]
    distinct = p[last_of_run]  # ascending, all < threshold
    qualifying = np.flatnonzero(miss <= target_miss_rate)
    if not qualifying.size:
        return 0.0, None, 0.0
    j = int(qualifying[-1])  # the highest qualifying cut: the most absences issued
    if j == len(distinct) - 1:  # every absence below the threshold already meets the target
        low = threshold
    else:
        # in (distinct[j], distinct[j + 1]]: below it exactly the first j + 1 runs
        low = min(threshold, midpoint(float(distinct[j + 1]), float(distinct[j])))
    kept = p < low
    return low, float(y[kept].mean()) if kept.any() else None, float(kept.sum() / len(p))


def uncertainty_band(
    probs: FloatArray,
    truth: BoolArray,
    threshold: float,
    target_precision: float,
    target_miss_rate: float | None = None,
) -> Band:
    """The band of one class (rule in the module docstring)."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    miss_target = 1.0 - target_precision if target_miss_rate is None else target_miss_rate
    high, reached, precision, share = upper_edge(probs, truth, threshold, target_precision)
    low, miss_rate, negative_share = lower_edge(probs, truth, threshold, miss_target)
    return Band(low, high, reached, precision, share, miss_rate, negative_share)


def _bands(
    probs: FloatArray, truth: BoolArray, thresholds: Sequence[float], settings: AutomationSettings
) -> list[Band]:
    return [
        uncertainty_band(
            probs[:, c],
            truth[:, c],
            float(thresholds[c]),
            settings.target_precision,
            settings.miss_rate,
        )
        for c in range(truth.shape[1])
    ]


def out_of_fold_review(
    probs: FloatArray,
    truth: BoolArray,
    thresholds: Sequence[float],
    automate: Sequence[bool],
    fold: np.ndarray,
    settings: AutomationSettings,
) -> OutOfFoldReview:
    """Each fold reviewed with band edges chosen on the other folds (shipped thresholds, flags)."""
    t = np.asarray(thresholds, dtype=np.float64)
    reviewed = np.zeros(len(fold), dtype=bool)
    for f in np.unique(fold):
        held, rest = fold == f, fold != f
        bands = _bands(probs[rest], truth[rest], thresholds, settings)
        flags = review_flags(
            probs[held], t, automate, [b.low for b in bands], [b.high for b in bands]
        )
        reviewed[held] = flags.any(axis=1)
    labels = ~reviewed[:, None] & (probs >= t)
    absences = ~reviewed[:, None] & (probs < t)
    return OutOfFoldReview(
        review_rate=float(reviewed.mean()),
        automated_precision=float(truth[labels].mean()) if labels.any() else None,
        automated_miss_rate=float(truth[absences].mean()) if absences.any() else None,
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
    bands = _bands(probs, truth, thresholds, settings)
    classes = []
    for c, (precision, recall, f1) in enumerate(quality):
        band = bands[c]
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
                automated_miss_rate=band.miss_rate,
                automated_negative_share=band.negative_share,
            )
        )
    automate = [c.automate for c in classes]
    outcome = automatic_decisions(
        probs, truth, thresholds, automate, [b.low for b in bands], [b.high for b in bands]
    )
    return AutomationSummary(
        target_f1=settings.target_f1,
        target_precision=settings.target_precision,
        target_miss_rate=settings.miss_rate,
        documents=int(truth.shape[0]),
        folds=settings.folds,
        seed=settings.seed,
        draws=settings.draws,
        classes=classes,
        review_rate=outcome.review_rate,
        automated_precision=outcome.precision,
        automated_miss_rate=outcome.miss_rate,
        oof=out_of_fold_review(probs, truth, thresholds, automate, fold, settings),
    )
