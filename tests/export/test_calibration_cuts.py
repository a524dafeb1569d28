"""Cuts, folds and bootstrap of threshold calibration, against brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from export.calibration.bootstrap import (
    Interval,
    micro_f1,
    per_class_f1,
    prediction_interval,
    resample_weights,
)
from export.calibration.cuts import best_cut, f1_curve, micro_macro, prf, snap_to_gap
from export.calibration.folds import stratified_folds
from export.calibration.reliability import reliability


def _brute_force(probs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(lowest predicted-positive probability, F1) of the best cut; highest cut wins ties."""
    best_t, best_f1 = 2.0, f1_score(truth, np.zeros_like(truth), zero_division=0.0)
    for t in sorted(set(probs.tolist()), reverse=True):
        f1 = f1_score(truth, probs >= t, zero_division=0.0)
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = t, f1
    return best_t, best_f1


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    rounding=st.sampled_from([None, 1, 2]),  # rounding creates ties between probabilities
)
def test_best_cut_is_brute_force_with_the_threshold_at_the_midpoint(
    seed: int, n: int, rounding: int | None
) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    probs = np.clip(rng.normal(0.3 + 0.3 * truth, 0.2), 0, 1)
    if rounding is not None:
        probs = np.round(probs, rounding)
    threshold, f1 = best_cut(probs, truth)
    lowest_positive, expected_f1 = _brute_force(probs, truth)
    assert f1 == pytest.approx(expected_f1, abs=1e-12)
    if lowest_positive > 1.0:  # predicting nothing is best (no positives)
        assert (probs < threshold).all()
        return
    # Same decisions as the brute-force cut, and the threshold halfway to the next lower value.
    assert ((probs >= threshold) == (probs >= lowest_positive)).all()
    below = probs[probs < lowest_positive]
    lower = below.max() if below.size else 0.0
    assert threshold == pytest.approx((lowest_positive + lower) / 2, abs=1e-15)
    assert threshold not in set(probs.tolist()) or lowest_positive == lower == 0.0


def test_thresholds_sit_between_observed_probabilities() -> None:
    probs = np.asarray([0.9, 0.7, 0.3, 0.1])
    assert best_cut(probs, np.asarray([True, True, False, False])) == (0.5, 1.0)
    probs = np.asarray([0.8, 0.6, 0.6, 0.2])
    threshold, f1 = best_cut(probs, np.asarray([True, True, False, False]))
    assert threshold == pytest.approx(0.4) and f1 == pytest.approx(0.8)
    curve = f1_curve(probs, np.asarray([True, True, False, False]))
    assert curve.thresholds.tolist() == pytest.approx([0.9, 0.7, 0.4, 0.1])  # first: nothing
    assert curve.tp.tolist() == [0, 1, 2, 2] and curve.fp.tolist() == [0, 0, 1, 2]
    # A probability of exactly 1.0 leaves no threshold <= 1 that predicts nothing.
    curve = f1_curve(np.asarray([1.0, 0.2]), np.asarray([True, False]))
    assert curve.thresholds.tolist() == [0.6, 0.1] and curve.tp.tolist() == [1, 1]


def test_snapping_keeps_decisions_and_centres_the_threshold() -> None:
    probs = np.asarray([0.1, 0.2, 0.35, 0.6, 0.9])
    for t, expected in ((0.3, 0.275), (0.35, 0.275), (0.36, 0.475), (0.95, 0.95), (0.05, 0.05)):
        snapped = snap_to_gap(t, probs)
        assert snapped == pytest.approx(expected)
        assert ((probs >= snapped) == (probs >= t)).all()


def test_micro_macro_and_prf_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((200, 4)) < np.asarray([0.3, 0.4, 0.02, 0.2])
    probs = np.clip(rng.normal(0.35 + 0.35 * truth, 0.15), 0, 1)
    thresholds = np.asarray([0.4, 0.5, 0.6, 0.3])
    predicted = probs >= thresholds
    micro, macro = micro_macro(probs, truth, thresholds)
    assert micro == pytest.approx(f1_score(truth, predicted, average="micro", zero_division=0.0))
    assert macro == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0.0))
    assert prf(predicted[:, 0], truth[:, 0]).f1 == pytest.approx(
        f1_score(truth[:, 0], predicted[:, 0])
    )


def test_folds_are_stratified_balanced_and_seeded() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random((203, 6)) < np.asarray([0.45, 0.2, 0.1, 0.05, 0.03, 0.0])
    folds = stratified_folds(truth, 5, seed=3)
    assert (folds == stratified_folds(truth, 5, seed=3)).all()
    assert (folds != stratified_folds(truth, 5, seed=4)).any()
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 2 and sizes.sum() == 203
    for c in range(truth.shape[1]):
        per_fold = np.bincount(folds[truth[:, c]], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)  # every fold holds positives
    with pytest.raises(ValueError, match="folds"):
        stratified_folds(truth[:3], 5, seed=0)


def test_bootstrap_counts_equal_resampling_the_documents() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random((50, 3)) < 0.3
    predicted = rng.random((50, 3)) < 0.4
    weights = resample_weights(50, 20, seed=5)
    assert (weights == resample_weights(50, 20, seed=5)).all()
    assert (weights.sum(axis=1) == 50).all()
    rows = np.repeat(np.arange(50), weights[7].astype(int))  # draw 7, as explicit indices
    expected = f1_score(truth[rows], predicted[rows], average=None, zero_division=0.0)
    assert per_class_f1(weights, predicted, truth)[7] == pytest.approx(expected)
    assert micro_f1(weights, predicted, truth)[7] == pytest.approx(
        f1_score(truth[rows], predicted[rows], average="micro", zero_division=0.0)
    )


def test_reliability_bins_match_a_direct_count() -> None:
    probs = np.asarray([[0.05, 0.15], [0.12, 0.95], [1.0, 0.5]])
    truth = np.asarray([[False, True], [False, True], [True, False]])
    curve = reliability(probs, truth, bins=10)
    assert curve.count.tolist() == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    assert curve.observed[1] == 0.5 and curve.observed[9] == 1.0 and curve.observed[5] == 0.0
    assert curve.mean_predicted[9] == pytest.approx(0.975)
    assert np.isnan(curve.observed[2])
    gaps = [0.05, abs(0.5 - 0.135), 0.5, 0.025]
    assert curve.expected_calibration_error == pytest.approx(
        (gaps[0] + 2 * gaps[1] + gaps[2] + 2 * gaps[3]) / 6
    )


def test_prediction_interval_adds_the_new_splits_sampling_noise() -> None:
    estimate = Interval(0.7, 0.02, 0.66, 0.74)
    same_size = prediction_interval(estimate, 600, 600)
    assert same_size.sd == pytest.approx(0.02 * np.sqrt(2))
    small = prediction_interval(estimate, 600, 150)
    assert small.sd == pytest.approx(0.02 * np.sqrt(5))
    assert small.low == pytest.approx(0.7 - 1.96 * small.sd) and small.estimate == 0.7
