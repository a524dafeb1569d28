"""Estimate every option out of fold, then ship the one that generalises best.

Outer k-fold cross-validation inside the validation split: each option's whole fitting procedure
(including ``per_class``'s own inner cross-validation) runs on k-1 folds and decides the held-out
fold. The pooled out-of-fold micro-F1 estimates what the option will score on unseen documents; a
bootstrap over documents gives its interval. The option with the best estimate ships, ties going
to the simpler one (``OPTIONS`` order), a gain within its paired bootstrap uncertainty counting as
a tie, so noise never beats doing nothing by construction of the choice. The shipped thresholds
are then fitted on the whole split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.calibration.bootstrap import Interval, micro_f1, per_class_f1, resample_weights
from export.calibration.cuts import BoolArray, FloatArray, IntArray, micro_macro_of
from export.calibration.folds import stratified_folds
from export.calibration.options import OPTIONS, ClassDecision, Fit, Settings, fit_all

TIE = 1e-12


@dataclass(frozen=True)
class OptionResult:
    name: str
    thresholds: FloatArray  # fitted on the whole split: what ships if chosen
    validation_micro_f1: float  # in-sample: the thresholds' own data
    validation_macro_f1: float
    oof_micro_f1: Interval
    oof_macro_f1: float
    oof_class_f1: tuple[Interval, ...]
    oof_micro_draws: FloatArray  # micro-F1 under each bootstrap resampling (same for all options)


@dataclass(frozen=True)
class Selection:
    options: dict[str, OptionResult]
    chosen: str
    reason: str
    global_threshold: float
    decisions: tuple[ClassDecision, ...]  # what per_class decided on the whole split
    folds: IntArray
    settings: Settings

    @property
    def shipped(self) -> OptionResult:
        return self.options[self.chosen]


def _check(probs: FloatArray, truth: BoolArray, settings: Settings) -> None:
    if probs.ndim != 2 or probs.shape != truth.shape:
        raise ValueError(f"probs {probs.shape} and labels {truth.shape} must be [docs, classes]")
    if probs.shape[0] < 2 * settings.folds:
        raise ValueError(
            f"{probs.shape[0]} documents are too few for {settings.folds}-fold cross-validation "
            f"(need at least {2 * settings.folds})"
        )
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
        raise ValueError("probabilities must be finite and in [0, 1]")


def choose(results: dict[str, OptionResult]) -> tuple[str, str]:
    """The simplest option that no more complex one beats beyond the bootstrap uncertainty.

    Walking ``OPTIONS`` from the simplest, an option replaces the current choice only if its
    out-of-fold micro-F1 gain over it is positive and the 95% interval of that gain (paired over
    the same resamplings) lies above 0: gains within the uncertainty are ties, and ties go to the
    simpler option. A winner whose fitted thresholds equal a simpler option's (``per_class`` where
    every class fell back is ``global``) is reported as that simpler option.
    """
    best = OPTIONS[0]
    steps = []
    for name in OPTIONS[1:]:
        gain = Interval.of(
            results[name].oof_micro_f1.estimate - results[best].oof_micro_f1.estimate,
            results[name].oof_micro_draws - results[best].oof_micro_draws,
        )
        wins = gain.estimate > TIE and gain.low > 0
        steps.append(
            f"{name} vs {best} {gain.estimate:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]"
            f"{' (better)' if wins else ''}"
        )
        if wins:
            best = name
    same = next(
        name
        for name in OPTIONS
        if np.array_equal(results[name].thresholds, results[best].thresholds)
    )
    figure = results[best].oof_micro_f1
    reason = (
        f"{best}: out-of-fold micro-F1 {figure.estimate:.4f} "
        f"(95% [{figure.low:.4f}, {figure.high:.4f}]); gains over the simpler choice, 95%: "
        + "; ".join(steps)
        + "; gains within the uncertainty are ties, ties go to the simpler option"
    )
    if same != best:
        reason += f"; its thresholds on the whole split are {same}'s, so {same} ships"
    return same, reason


def select(probs: FloatArray, truth: BoolArray, settings: Settings | None = None) -> Selection:
    """Cross-validate every option on (probs, truth), choose one, fit it on all of the data."""
    settings = settings or Settings()
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    _check(probs, truth, settings)
    folds = stratified_folds(truth, settings.folds, settings.seed)
    oof = {name: np.zeros(truth.shape, dtype=bool) for name in OPTIONS}
    for fold in range(settings.folds):
        held, train = folds == fold, folds != fold
        fold_fits = fit_all(probs[train], truth[train], settings, settings.seed + 1 + fold)
        for name in OPTIONS:
            oof[name][held] = probs[held] >= fold_fits[name].thresholds[None, :]
    weights = resample_weights(truth.shape[0], settings.draws, settings.seed)
    fits: dict[str, Fit] = fit_all(probs, truth, settings, settings.seed)
    results = {}
    for name in OPTIONS:
        predicted = oof[name]
        micro, macro = micro_macro_of(predicted, truth)
        class_draws = per_class_f1(weights, predicted, truth)
        class_point = per_class_f1(np.ones((1, truth.shape[0])), predicted, truth)[0]
        valid_micro, valid_macro = micro_macro_of(probs >= fits[name].thresholds[None, :], truth)
        micro_draws = micro_f1(weights, predicted, truth)
        results[name] = OptionResult(
            name=name,
            thresholds=fits[name].thresholds,
            validation_micro_f1=valid_micro,
            validation_macro_f1=valid_macro,
            oof_micro_f1=Interval.of(micro, micro_draws),
            oof_macro_f1=macro,
            oof_class_f1=tuple(
                Interval.of(class_point[c], class_draws[:, c]) for c in range(truth.shape[1])
            ),
            oof_micro_draws=micro_draws,
        )
    chosen, reason = choose(results)
    return Selection(
        options=results,
        chosen=chosen,
        reason=reason,
        global_threshold=fits[chosen].global_threshold,
        decisions=fits["per_class"].decisions,
        folds=folds,
        settings=settings,
    )
