"""Per-class ensemble weights chosen by cross-validation on a validation file (pure numpy).

Rule (also in docs/tfidf.md). For each class, candidate weight vectors are the grid points of the
simplex in steps of ``1/grid`` (one-hot vectors included: a selective ensemble is the special case
of 0/1 weights). The validation documents are cut into stratified folds; on each fold's
complement the candidate with the best F1 (at its own F1-maximising cut) is chosen, with its cut,
and applied to the fold: the **ensemble's out-of-fold predictions**. Each member is scored out of
fold the same way (its cut tuned on the other folds); the member with the best out-of-fold F1 is
the class's **best single member**. A document bootstrap of the paired F1 difference gives a 95%
interval: where its low end is above 0, the class ships the candidate chosen on the whole
validation set (and its cut); otherwise it ships the best member's probability (one-hot weights)
at that member's own cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.calibration.automation import out_of_fold_predictions
from export.calibration.bootstrap import Interval, resample_weights
from export.calibration.cuts import BoolArray, FloatArray, best_cut, f1_from_counts
from export.calibration.folds import stratified_folds
from service.ensemble import ClassCombination, EnsembleMember, EnsembleSpec, combine

TIE = 1e-12


@dataclass(frozen=True)
class EnsembleSettings:
    folds: int = 5
    seed: int = 0
    draws: int = 1000
    grid: int = 10


def weight_grid(members: int, steps: int) -> FloatArray:
    """Every weight vector with entries in {0, 1/steps, ..., 1} summing to 1; one-hot first."""
    points = [
        np.asarray(c, dtype=np.float64) / steps
        for c in itertools.product(range(steps + 1), repeat=members)
        if sum(c) == steps
    ]
    points.sort(key=lambda w: (int((w > 0).sum()), -float(w.max())))
    return np.stack(points)


def _f1(predicted: BoolArray, truth: BoolArray) -> float:
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    return float(f1_from_counts(tp, fp, fn))


def choose_weights(probs: FloatArray, truth: BoolArray, grid: FloatArray) -> tuple[int, float]:
    """(grid row, cut) with the best in-sample F1 for one class; ties go to the earlier row
    (fewer members). ``probs`` is [members, documents]."""
    best, best_f1, best_cut_at = 0, -1.0, 1.0
    for row, w in enumerate(grid):
        cut, f1 = best_cut(w @ probs, truth)
        if f1 > best_f1 + TIE:
            best, best_f1, best_cut_at = row, f1, cut
    return best, best_cut_at


def ensemble_out_of_fold(
    probs: FloatArray, truth: BoolArray, fold: np.ndarray, grid: FloatArray
) -> BoolArray:
    """One class's out-of-fold decisions when weights and cut are chosen on the other folds."""
    predicted = np.zeros(truth.shape[0], dtype=bool)
    for f in np.unique(fold):
        held, rest = fold == f, fold != f
        row, cut = choose_weights(probs[:, rest], truth[rest], grid)
        predicted[held] = grid[row] @ probs[:, held] >= cut
    return predicted


def _paired_gain(
    ensemble: BoolArray, single: BoolArray, truth: BoolArray, draws: int, seed: int
) -> Interval:
    weights = resample_weights(truth.shape[0], draws, seed)

    def f1s(predicted: BoolArray) -> FloatArray:
        tp = weights @ (predicted & truth).astype(np.float64)
        fp = weights @ (predicted & ~truth).astype(np.float64)
        fn = weights @ (~predicted & truth).astype(np.float64)
        return f1_from_counts(tp, fp, fn)

    return Interval.of(_f1(ensemble, truth) - _f1(single, truth), f1s(ensemble) - f1s(single))


def select_ensemble(
    member_probabilities: FloatArray,
    truth: BoolArray,
    labels: Sequence[str],
    members: Sequence[EnsembleMember],
    validation: str,
    settings: EnsembleSettings | None = None,
) -> EnsembleSpec:
    """The ensemble section: per class a mixture (where it wins out of fold) or the best member.

    ``member_probabilities`` is [members, documents, classes] on the validation documents.
    """
    settings = settings or EnsembleSettings()
    probs = np.asarray(member_probabilities, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    m, _, k = probs.shape
    if truth.shape != probs.shape[1:] or len(labels) != k or len(members) != m:
        raise ValueError("probabilities, truths, labels and members must agree in shape")
    grid = weight_grid(m, settings.grid)
    fold = stratified_folds(truth, settings.folds, settings.seed)
    singles = [out_of_fold_predictions(probs[i], truth, fold) for i in range(m)]
    classes = []
    for c in range(k):
        y = truth[:, c]
        single_f1 = [_f1(s[:, c], y) for s in singles]
        best = int(np.argmax(single_f1))  # ties: the earlier member
        ensemble = ensemble_out_of_fold(probs[:, :, c], y, fold, grid)
        gain = _paired_gain(ensemble, singles[best][:, c], y, settings.draws, settings.seed + c)
        if gain.low > 0:
            row, cut = choose_weights(probs[:, :, c], y, grid)
            weights, source, member = grid[row], "ensemble", None
        else:
            cut, _ = best_cut(probs[best, :, c], y)
            weights, source, member = np.eye(m)[best], "member", best
        classes.append(
            ClassCombination(
                label=labels[c],
                weights=[float(w) for w in weights],
                threshold=float(np.clip(cut, 0.0, 1.0)),
                source=source,
                member=member,
                oof_f1_ensemble=_f1(ensemble, y),
                oof_f1_best_member=single_f1[best],
                oof_gain_low=gain.low,
                oof_gain_high=gain.high,
            )
        )
    return EnsembleSpec(
        members=list(members),
        classes=classes,
        folds=settings.folds,
        seed=settings.seed,
        draws=settings.draws,
        grid=settings.grid,
        validation=validation,
    )


__all__ = ["EnsembleSettings", "combine", "select_ensemble", "weight_grid"]
