"""Cross-validated choice of thresholds: falls back where per-class cuts cannot generalise,
keeps them where they do, deterministic, thresholds between observed probabilities."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from export.calibration.bootstrap import Interval
from export.calibration.options import OPTIONS, Settings, fit_option
from export.calibration.selection import OptionResult, choose, select

FAST = Settings(draws=200)


def independent(seed: int, docs: int = 300, classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Labels independent of the probabilities, every class equally frequent: a class's own cut
    has nothing to generalise (with unequal frequencies, predicting all of a frequent class and
    none of a rare one would be a real micro-F1 gain)."""
    rng = np.random.default_rng(seed)
    return rng.random((docs, classes)), rng.random((docs, classes)) < 0.3


CENTRES = np.asarray([0.15, 0.35, 0.6, 0.8])  # each class's best cut sits at its own centre


def shifted(seed: int, docs: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Positives score just above a class-specific centre, negatives just below it."""
    rng = np.random.default_rng(seed)
    truth = rng.random((docs, CENTRES.size)) < 0.3
    probs = rng.normal(np.where(truth, CENTRES + 0.12, CENTRES - 0.12), 0.08)
    return np.clip(probs, 0.0, 1.0), truth


def test_falls_back_to_global_where_labels_are_independent_of_probabilities() -> None:
    kept = 0
    for seed in range(6):
        probs, truth = independent(seed)
        selection = select(probs, truth, FAST)
        kept += sum(d.own for d in selection.decisions)
        # A single threshold ships, never per-class noise; and never worse than doing nothing
        # out of fold, by construction of the choice.
        assert selection.chosen in ("at_0.5", "global"), selection.reason
        assert len(set(selection.shipped.thresholds.tolist())) == 1
        oof = {name: selection.options[name].oof_micro_f1.estimate for name in OPTIONS}
        assert oof[selection.chosen] >= oof["at_0.5"]
    # A 95% interval lets through about 1 class in 40 by chance; here 36 decisions.
    assert kept <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keeps_per_class_cuts_where_class_optima_are_shifted(seed: int) -> None:
    probs, truth = shifted(seed)
    selection = select(probs, truth, FAST)
    assert all(d.own for d in selection.decisions), [d.reason for d in selection.decisions]
    assert selection.chosen in ("per_class", "shrunk")
    shipped = selection.shipped.thresholds
    assert np.abs(shipped - CENTRES).max() < 0.1  # each near its own class's optimum
    oof = selection.options
    assert oof["per_class"].oof_micro_f1.low > oof["global"].oof_micro_f1.high
    assert oof[selection.chosen].oof_micro_f1.estimate > oof["at_0.5"].oof_micro_f1.estimate


def test_rare_classes_take_the_global_threshold() -> None:
    probs, truth = shifted(0)
    truth[:, 2] = False
    truth[:3, 2] = True
    fit = fit_option("per_class", probs, truth, Settings(draws=100, min_support=5), seed=0)
    decision = fit.decisions[2]
    assert not decision.own and "3 positives < min_support 5" in decision.reason
    assert fit.thresholds[2] == fit.global_threshold
    assert fit_option("shrunk", probs, truth, Settings(min_support=5), 0).thresholds[
        2
    ] == pytest.approx(fit.global_threshold)


def test_identical_across_runs_and_seeded() -> None:
    probs, truth = shifted(4)
    first, second = select(probs, truth, FAST), select(probs, truth, FAST)
    assert (first.folds == second.folds).all() and first.chosen == second.chosen
    for name in OPTIONS:
        a, b = first.options[name], second.options[name]
        assert a.thresholds.tolist() == b.thresholds.tolist()
        assert a.oof_micro_f1 == b.oof_micro_f1
    assert first.decisions == second.decisions
    other = select(probs, truth, Settings(draws=200, seed=1))
    assert (other.folds != first.folds).any()


@pytest.mark.parametrize("name", ["global", "per_class", "shrunk"])
def test_every_tuned_threshold_is_the_midpoint_of_a_gap(name: str) -> None:
    probs, truth = shifted(5)
    probs = np.round(probs, 2)  # many ties, as with real probabilities printed coarsely
    fit = fit_option(name, probs, truth, FAST, seed=0)
    for c, threshold in enumerate(fit.thresholds):
        column = probs[:, c] if name != "global" else probs.ravel()
        assert threshold not in set(column.tolist())
        upper = column[column >= threshold].min()
        below = column[column < threshold]
        lower = below.max() if below.size else 0.0
        assert threshold == pytest.approx((upper + lower) / 2, abs=1e-12)


NOISE = np.random.default_rng(0).normal(0.0, 0.004, 300)  # shared: the resamplings are paired


def _result(name: str, oof: float, spread: float = 1.0) -> OptionResult:
    figure = Interval(oof, 0.01, oof - 0.02, oof + 0.02)
    thresholds = np.asarray([0.5, 0.5]) if name == "at_0.5" else np.asarray([0.3, len(name) / 10])
    draws = oof + spread * NOISE
    return OptionResult(name, thresholds, oof, oof, figure, oof, (figure, figure), draws)


def test_ties_and_gains_within_the_uncertainty_go_to_the_simpler_option() -> None:
    results = {name: _result(name, 0.7) for name in OPTIONS}
    assert choose(results)[0] == "at_0.5"
    # A small gain whose paired interval straddles 0 is a tie.
    results["global"] = _result("global", 0.702, spread=1.3)
    chosen, reason = choose(results)
    assert chosen == "at_0.5" and "ties go to the simpler option" in reason
    results["global"] = _result("global", 0.72)  # same noise: the paired gain is exactly +0.02
    results["per_class"] = _result("per_class", 0.73)
    results["shrunk"] = _result("shrunk", 0.73)
    assert choose(results)[0] == "per_class"  # shrunk only ties with per_class
    # A winner identical to a simpler option on the whole split ships as the simpler one.
    results["per_class"] = replace(results["per_class"], thresholds=results["global"].thresholds)
    chosen, reason = choose(results)
    assert chosen == "global" and "so global ships" in reason


def test_refuses_too_few_documents_and_bad_settings() -> None:
    probs, truth = shifted(0, docs=9)
    with pytest.raises(ValueError, match="too few for 5-fold"):
        select(probs, truth)
    with pytest.raises(ValueError, match="folds must be >= 2"):
        Settings(folds=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        select(np.full((20, 2), 1.5), np.zeros((20, 2), dtype=bool), Settings(folds=2))
