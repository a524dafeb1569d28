"""Per-type span cuts chosen on exact-match span counts: the calibration's maths (numpy only).

Input: ``counts[doc, type, cut, 3]``, the (tp, fp, fn) of every type of every validation document
when that type is decoded at grid cut ``GRID[cut]`` (start = end = inside cut). The options are the
classifier calibration's (:mod:`export.calibration.options`) and the choice among them is its
:func:`export.calibration.selection.choose`: everything is estimated out of fold, and the simplest
option that no more complex one beats beyond the paired bootstrap uncertainty ships.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from export.calibration.bootstrap import Interval, resample_weights
from export.calibration.cuts import f1_from_counts
from export.calibration.folds import stratified_folds
from export.calibration.options import OPTIONS, Settings
from export.calibration.selection import OptionResult, choose
from export.errors import ExportError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
GRID: FloatArray = np.round(np.arange(1, 50) * 0.02, 2)  # 0.02 ... 0.98
HALF = int(np.flatnonzero(GRID == 0.5)[0])


def _f1(counts: FloatArray) -> FloatArray:
    """F1 over the last axis (tp, fp, fn)."""
    return f1_from_counts(counts[..., 0], counts[..., 1], counts[..., 2])


def at_cuts(counts: FloatArray, cuts: IntArray) -> FloatArray:
    """``[docs, types, 3]``: each type's counts at its grid cut."""
    picked: FloatArray = counts[:, np.arange(counts.shape[1]), cuts]
    return picked


def fit_global(counts: FloatArray) -> int:
    """The grid cut with the best pooled span micro-F1 (ties: the highest cut)."""
    f1 = _f1(counts.sum(axis=(0, 1)))
    return int(np.flatnonzero(f1 == f1.max())[-1])


def own_cuts(counts: FloatArray, rounds: int = 3) -> IntArray:
    """Per-type cuts maximising the pooled micro-F1 by coordinate ascent from the global cut."""
    types = counts.shape[1]
    cuts = np.full(types, fit_global(counts), dtype=np.int64)
    per_type = counts.sum(axis=0)  # [types, grid, 3]
    for _ in range(rounds):
        moved = False
        for t in range(types):
            others = at_cuts(counts, cuts).sum(axis=0).sum(axis=0) - per_type[t, cuts[t]]
            micro = _f1(others[None, :] + per_type[t])
            best = int(np.flatnonzero(micro == micro.max())[-1])
            if micro[best] > micro[cuts[t]] + 1e-12:
                cuts[t], moved = best, True
        if not moved:
            break
    return cuts


@dataclass(frozen=True)
class TypeDecision:
    own: bool
    reason: str
    support: int
    own_cut: int
    gain: Interval


def _micro_draws(weights: FloatArray, per_doc: FloatArray) -> FloatArray:
    """[draws] micro-F1 under each resampling; ``per_doc``: [docs, 3] pooled counts."""
    return _f1(weights @ per_doc)


def decide_types(counts: FloatArray, settings: Settings, seed: int) -> tuple[TypeDecision, ...]:
    """Per type: own cut or global, from an inner cross-validation and a paired bootstrap."""
    docs, types = counts.shape[:2]
    presence = counts[:, :, HALF, 0] + counts[:, :, HALF, 2] > 0  # has gold spans of the type
    folds = stratified_folds(presence, min(settings.folds, docs), seed)
    at_global = np.zeros((docs, types, 3))
    at_own = np.zeros((docs, types, 3))
    for fold in range(int(folds.max()) + 1):
        held, train = folds == fold, folds != fold
        glob = fit_global(counts[train])
        at_global[held] = at_cuts(counts[held], np.full(types, glob, dtype=np.int64))
        at_own[held] = at_cuts(counts[held], own_cuts(counts[train]))
    weights = resample_weights(docs, settings.draws, seed)
    base = at_global.sum(axis=1)
    base_draws, base_f1 = _micro_draws(weights, base), float(_f1(base.sum(axis=0)))
    cuts = own_cuts(counts)
    decisions = []
    for t in range(types):
        support = int(counts[:, t, HALF, 0].sum() + counts[:, t, HALF, 2].sum())
        mixed = base - at_global[:, t] + at_own[:, t]
        gain = Interval.of(
            float(_f1(mixed.sum(axis=0))) - base_f1, _micro_draws(weights, mixed) - base_draws
        )
        if support < settings.min_support:
            own, reason = (
                False,
                f"global: {support} gold spans < min_support {settings.min_support}",
            )
        else:
            own = gain.low > 0
            reason = (
                f"{'own' if own else 'global'}: out-of-fold micro-F1 gain over global "
                f"{gain.estimate:+.4f}, 95% [{gain.low:+.4f}, {gain.high:+.4f}]"
                f"{' above' if own else ' not above'} 0"
            )
        decisions.append(TypeDecision(own, reason, support, int(cuts[t]), gain))
    return tuple(decisions)


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p) - np.log1p(-p))


def fit_all(
    counts: FloatArray, settings: Settings, seed: int
) -> tuple[dict[str, IntArray], tuple[TypeDecision, ...]]:
    """Every option's grid cuts fitted on ``counts``."""
    types = counts.shape[1]
    glob = fit_global(counts)
    decisions = decide_types(counts, settings, seed)
    own = np.asarray([d.own_cut if d.own else glob for d in decisions], dtype=np.int64)
    support = np.asarray([d.support for d in decisions], dtype=np.float64)
    weight = support / (support + settings.shrinkage) if settings.shrinkage else np.ones(types)
    weight[[not d.own for d in decisions]] = 0.0
    blended = weight * _logit(GRID[own]) + (1 - weight) * _logit(GRID[glob])
    target = 1 / (1 + np.exp(-blended))
    shrunk = np.abs(GRID[None, :] - target[:, None]).argmin(axis=1).astype(np.int64)
    fits = {
        "at_0.5": np.full(types, HALF, dtype=np.int64),
        "global": np.full(types, glob, dtype=np.int64),
        "per_class": own,
        "shrunk": shrunk,
    }
    return fits, decisions


@dataclass(frozen=True)
class SpanSelection:
    options: dict[str, OptionResult]
    cuts: dict[str, IntArray]
    chosen: str
    reason: str
    decisions: tuple[TypeDecision, ...]
    folds: IntArray
    settings: Settings


def select_cuts(counts: FloatArray, settings: Settings) -> SpanSelection:
    """Cross-validate every option, choose one (``choose``), fit it on all documents."""
    docs, types = counts.shape[:2]
    if docs < 2 * settings.folds:
        raise ExportError(
            f"{docs} documents are too few for {settings.folds}-fold cross-validation "
            f"(need at least {2 * settings.folds})"
        )
    presence = counts[:, :, HALF, 0] + counts[:, :, HALF, 2] > 0
    folds = stratified_folds(presence, settings.folds, settings.seed)
    oof = {name: np.zeros((docs, types, 3)) for name in OPTIONS}
    for fold in range(settings.folds):
        held, train = folds == fold, folds != fold
        fold_fits, _ = fit_all(counts[train], settings, settings.seed + 1 + fold)
        for name in OPTIONS:
            oof[name][held] = at_cuts(counts[held], fold_fits[name])
    weights = resample_weights(docs, settings.draws, settings.seed)
    fits, decisions = fit_all(counts, settings, settings.seed)
    results = {}
    for name in OPTIONS:
        pooled = oof[name].sum(axis=1)
        draws = _micro_draws(weights, pooled)
        class_f1 = _f1(oof[name].sum(axis=0))
        class_draws = _f1(np.einsum("rd,dtk->rtk", weights, oof[name]))
        valid = at_cuts(counts, fits[name]).sum(axis=0)
        results[name] = OptionResult(
            name=name,
            thresholds=GRID[fits[name]],
            validation_micro_f1=float(_f1(valid.sum(axis=0))),
            validation_macro_f1=float(_f1(valid).mean()),
            oof_micro_f1=Interval.of(float(_f1(pooled.sum(axis=0))), draws),
            oof_macro_f1=float(class_f1.mean()),
            oof_class_f1=tuple(
                Interval.of(float(class_f1[t]), class_draws[:, t]) for t in range(types)
            ),
            oof_micro_draws=draws,
        )
    chosen, reason = choose(results)
    return SpanSelection(results, fits, chosen, reason, decisions, folds, settings)
