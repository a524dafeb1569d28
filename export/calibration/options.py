"""The candidate threshold rules, each a function of (probabilities, labels) only.

- ``at_0.5``: every class at 0.5 (doing nothing).
- ``global``: one threshold for all classes, maximising micro-F1.
- ``per_class``: each class its own cut (coordinate ascent on micro-F1 from the global one),
  kept only where it beats the global one out of fold beyond the bootstrap uncertainty (the 95%
  interval of the micro-F1 gain lies above 0; an inner cross-validation on the data it is fitted
  on); elsewhere the global threshold, and the decision says why.
- ``shrunk``: like ``per_class``, but each kept cut is moved towards the global one in logit
  space, by weight ``support / (support + shrinkage)``: few positives, little trust in the
  class's own cut.

Every threshold is placed at the midpoint of a gap between observed probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.calibration.bootstrap import Interval, micro_f1, per_class_f1, resample_weights
from export.calibration.cuts import (
    BoolArray,
    FloatArray,
    best_cut,
    f1_curve,
    f1_from_counts,
    snap_to_gap,
)
from export.calibration.folds import stratified_folds

OPTIONS: tuple[str, ...] = ("at_0.5", "global", "per_class", "shrunk")  # simplest first


@dataclass(frozen=True)
class Settings:
    """How calibration estimates and decides; the defaults are what ``calibrate`` uses."""

    folds: int = 5
    seed: int = 0
    draws: int = 1000  # bootstrap resamplings
    min_support: int = 5  # fewer positives: the class takes the global threshold outright
    shrinkage: float = 20.0  # positives at which own and global cut weigh the same

    def __post_init__(self) -> None:
        limits = {
            "folds": (self.folds, 2),
            "bootstrap draws": (self.draws, 10),
            "min_support": (self.min_support, 0),
            "shrinkage": (self.shrinkage, 0),
        }
        for name, (value, least) in limits.items():
            if value < least:
                raise ValueError(f"{name} must be >= {least}, got {value}")


@dataclass(frozen=True)
class ClassDecision:
    """Whether a class keeps its own cut (``per_class``), with the out-of-fold evidence."""

    own: bool
    reason: str
    support: int
    own_threshold: float  # its F1-maximising cut on all the data
    oof_f1_own: Interval
    oof_f1_global: Interval
    gain: Interval  # out-of-fold micro-F1: own cut for this class only, minus all global


@dataclass(frozen=True)
class Fit:
    thresholds: FloatArray
    global_threshold: float
    decisions: tuple[ClassDecision, ...] = ()  # per_class only


def fit_global(probs: FloatArray, truth: BoolArray) -> float:
    """The micro-F1-maximising threshold shared by all classes (pooled cut)."""
    return best_cut(probs.ravel(), truth.ravel())[0]


def own_cuts(probs: FloatArray, truth: BoolArray, rounds: int = 3) -> FloatArray:
    """Per-class cuts that maximise the pooled micro-F1 (what the choice is scored on).

    Coordinate ascent from the global threshold: each class in turn takes the cut that maximises
    micro-F1 with the other classes' cuts fixed, and moves only on a strict gain. Tuning each class
    for its own F1 instead would let a weak class predict nearly everything (its F1 optimum),
    flooding the pooled counts with false positives.
    """
    classes = truth.shape[1]
    thresholds = np.full(classes, fit_global(probs, truth))
    curves = [f1_curve(probs[:, c], truth[:, c]) for c in range(classes)]
    predicted = probs >= thresholds[None, :]
    counts = np.stack(
        [
            (predicted & truth).sum(axis=0),
            (predicted & ~truth).sum(axis=0),
            (~predicted & truth).sum(axis=0),
        ]
    ).astype(np.float64)  # [tp/fp/fn, class]
    for _ in range(rounds):
        moved = False
        for c, curve in enumerate(curves):
            tp, fp, fn = counts.sum(axis=1) - counts[:, c]
            micro = f1_from_counts(tp + curve.tp, fp + curve.fp, fn + curve.fn)
            current = float(f1_from_counts(tp + counts[0, c], fp + counts[1, c], fn + counts[2, c]))
            best = int(np.flatnonzero(micro == micro.max())[0])  # highest threshold among ties
            if micro[best] > current + 1e-12:
                thresholds[c] = curve.thresholds[best]
                counts[:, c] = curve.tp[best], curve.fp[best], curve.fn[best]
                moved = True
        if not moved:
            break
    return thresholds


def _oof_predictions(
    probs: FloatArray, truth: BoolArray, settings: Settings, seed: int
) -> tuple[BoolArray, BoolArray]:
    """Out-of-fold decisions at the global threshold and at each class's own cut."""
    folds = stratified_folds(truth, min(settings.folds, truth.shape[0]), seed)
    at_global = np.zeros(truth.shape, dtype=bool)
    at_own = np.zeros(truth.shape, dtype=bool)
    for fold in range(int(folds.max()) + 1):
        held, train = folds == fold, folds != fold
        at_global[held] = probs[held] >= fit_global(probs[train], truth[train])
        at_own[held] = probs[held] >= own_cuts(probs[train], truth[train])[None, :]
    return at_global, at_own


def _class_f1(predicted: BoolArray, truth: BoolArray) -> FloatArray:
    tp = (predicted & truth).sum(axis=0)
    return f1_from_counts(tp, (predicted & ~truth).sum(axis=0), (~predicted & truth).sum(axis=0))


def decide_classes(
    probs: FloatArray, truth: BoolArray, settings: Settings, seed: int
) -> tuple[ClassDecision, ...]:
    """Per class: own cut or global threshold, from an inner cross-validation and a bootstrap.

    The gain of a class is the out-of-fold micro-F1 of "its own cut, every other class at the
    global threshold" minus that of "all at the global threshold", paired over the same
    resamplings.
    """
    at_global, at_own = _oof_predictions(probs, truth, settings, seed)
    weights = resample_weights(truth.shape[0], settings.draws, seed)
    ones = np.ones((1, truth.shape[0]))
    own_draws = per_class_f1(weights, at_own, truth)
    global_draws = per_class_f1(weights, at_global, truth)
    own_f1, global_f1 = _class_f1(at_own, truth), _class_f1(at_global, truth)
    base_draws, base = micro_f1(weights, at_global, truth), micro_f1(ones, at_global, truth)[0]
    cuts = own_cuts(probs, truth)
    decisions = []
    for c in range(truth.shape[1]):
        support = int(truth[:, c].sum())
        mixed = at_global.copy()
        mixed[:, c] = at_own[:, c]
        gain = Interval.of(
            micro_f1(ones, mixed, truth)[0] - base, micro_f1(weights, mixed, truth) - base_draws
        )
        if support < settings.min_support:
            own, reason = False, f"global: {support} positives < min_support {settings.min_support}"
        else:
            own = gain.low > 0
            reason = (
                f"{'own' if own else 'global'}: out-of-fold micro-F1 gain over global "
                f"{gain.estimate:+.4f}, 95% [{gain.low:+.4f}, {gain.high:+.4f}]"
                f"{' above' if own else ' not above'} 0"
            )
        decisions.append(
            ClassDecision(
                own=own,
                reason=reason,
                support=support,
                own_threshold=float(cuts[c]),
                oof_f1_own=Interval.of(own_f1[c], own_draws[:, c]),
                oof_f1_global=Interval.of(global_f1[c], global_draws[:, c]),
                gain=gain,
            )
        )
    return tuple(decisions)


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p) - np.log1p(-p))


def shrunk_cuts(
    probs: FloatArray,
    truth: BoolArray,
    settings: Settings,
    decisions: tuple[ClassDecision, ...],
    glob: float,
) -> FloatArray:
    """Kept own cuts pulled towards the global one by weight support / (support + shrinkage);
    classes that fell back take the global threshold."""
    support = truth.sum(axis=0).astype(np.float64)
    weight = (
        support / (support + settings.shrinkage) if settings.shrinkage else np.ones_like(support)
    )
    weight[[not d.own for d in decisions]] = 0.0
    own = np.asarray([d.own_threshold for d in decisions])
    blended = weight * _logit(own) + (1 - weight) * _logit(np.asarray(glob))
    targets = 1 / (1 + np.exp(-blended))
    return np.asarray(
        [
            snap_to_gap(float(t), probs[:, c]) if weight[c] > 0 else glob
            for c, t in enumerate(targets)
        ]
    )


def fit_all(probs: FloatArray, truth: BoolArray, settings: Settings, seed: int) -> dict[str, Fit]:
    """Every option fitted on (probs, truth); ``seed`` drives the per-class decisions' resampling.

    ``per_class`` and ``shrunk`` share the decisions: a class that falls back takes the global
    threshold in both.
    """
    classes = truth.shape[1]
    glob = fit_global(probs, truth)
    decisions = decide_classes(probs, truth, settings, seed)
    own = np.asarray([d.own_threshold if d.own else glob for d in decisions])
    return {
        "at_0.5": Fit(np.full(classes, 0.5), 0.5),
        "global": Fit(np.full(classes, glob), glob),
        "per_class": Fit(own, glob, decisions),
        "shrunk": Fit(shrunk_cuts(probs, truth, settings, decisions, glob), glob, decisions),
    }


def fit_option(
    name: str, probs: FloatArray, truth: BoolArray, settings: Settings, seed: int
) -> Fit:
    """One option's thresholds fitted on (probs, truth)."""
    if name not in OPTIONS:
        raise ValueError(f"unknown option {name!r}; one of {OPTIONS}")
    return fit_all(probs, truth, settings, seed)[name]
