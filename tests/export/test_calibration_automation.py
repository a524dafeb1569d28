"""Per-class automation maths on hand-made validation sets: out-of-fold quality, the automate flag
against the F1 target, the uncertainty band rule; a class below the target is never auto-decided."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export.calibration.automation import (
    AutomationSettings,
    automation,
    out_of_fold_predictions,
    uncertainty_band,
)
from service.review import review

LABELS = ["clear", "noise"]


def _validation(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class "clear": positives score 0.8-1.0, negatives 0-0.2 (separable). Class "noise": the
    probability says nothing about the truth."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, 2), dtype=bool)
    truth[: n // 3, 0] = True
    truth[:, 1] = rng.random(n) < 0.4
    probs = np.empty((n, 2))
    probs[:, 0] = np.where(truth[:, 0], rng.uniform(0.8, 1.0, n), rng.uniform(0.0, 0.2, n))
    probs[:, 1] = rng.random(n)
    return probs, truth


def test_a_separable_class_is_automated_and_a_noisy_one_is_not() -> None:
    probs, truth = _validation()
    summary = automation(probs, truth, [0.5, 0.5], LABELS, AutomationSettings(draws=300))
    clear, noise = summary.classes
    assert clear.f1.value == 1.0 and clear.f1.low == 1.0 and clear.automate
    assert clear.precision.value == 1.0 and clear.recall.value == 1.0
    assert clear.support == 66
    assert noise.f1.low < 0.63 and not noise.automate
    assert noise.f1.low <= noise.f1.value <= noise.f1.high
    assert summary.documents == 200 and summary.target_f1 == 0.63


def test_the_f1_target_decides_the_flag_from_the_interval_low_end() -> None:
    probs, truth = _validation()
    summary = automation(probs, truth, [0.5, 0.5], LABELS, AutomationSettings(draws=300))
    noise = summary.classes[1]
    lenient = AutomationSettings(target_f1=noise.f1.low - 1e-9, target_precision=0.0, draws=300)
    assert automation(probs, truth, [0.5, 0.5], LABELS, lenient).classes[1].automate
    strict = AutomationSettings(target_f1=1.0, draws=300)  # reached (>=) only by a perfect low end
    flags = [c.automate for c in automation(probs, truth, [0.5, 0.5], LABELS, strict).classes]
    assert flags == [True, False]


def test_out_of_fold_thresholds_never_see_the_document_they_decide() -> None:
    # two folds: fold 0's positives score 0.9, fold 1's score 0.3 (its negatives 0.1). Tuned on
    # fold 1 the cut lies in (0.1, 0.3]: fold 0's positives pass. Tuned on fold 0 it lies in
    # (0.1, 0.9]: at the midpoint 0.5, so fold 1's positives (0.3) are missed.
    probs = np.array([[0.9], [0.9], [0.1], [0.3], [0.3], [0.1]])
    truth = np.array([[1], [1], [0], [1], [1], [0]], dtype=bool)
    fold = np.array([0, 0, 0, 1, 1, 1])
    predicted = out_of_fold_predictions(probs, truth, fold)
    assert predicted[:, 0].tolist() == [True, True, False, False, False, False]


def test_the_band_top_is_the_lowest_cut_reaching_the_target_precision() -> None:
    probs = np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.3, 0.2])
    truth = np.array([1, 1, 1, 0, 1, 0, 0], dtype=bool)
    band = uncertainty_band(probs, truth, threshold=0.5, target_precision=0.95)
    # labels >= 0.5 have precision 4/5; >= 0.7 reach 1.0: the cut sits between 0.7 and 0.65
    assert band.high == pytest.approx(0.675)
    assert band.precision == 1.0 and band.share == pytest.approx(3 / 5) and band.reached
    # below the threshold there is no positive: the absences already meet any miss rate
    assert band.low == 0.5 and band.miss_rate == 0.0 and band.negative_share == 1.0
    relaxed = uncertainty_band(probs, truth, threshold=0.5, target_precision=0.8)
    assert relaxed.high == relaxed.low == 0.5  # the threshold's own labels reach 0.8: no band
    hopeless = uncertainty_band(probs, ~truth, threshold=0.5, target_precision=0.95)
    assert not hopeless.reached


# below t = 0.5, ascending: 0.05 0.1 0.15 0.2 are negatives, 0.25 positive, 0.3 0.35 negatives,
# 0.4 0.45 positives; above it 0.9 and 0.8 (positives)
BELOW = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.9, 0.8])
BELOW_TRUTH = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1], dtype=bool)


@pytest.mark.parametrize(
    ("miss_rate", "low", "kept_miss", "kept_share"),
    [
        # the absences below 0.375 hold 1 positive in 7 (<= 0.2); below 0.425 it is 2 in 8
        (0.2, 0.375, 1 / 7, 7 / 9),
        (0.0, 0.225, 0.0, 4 / 9),  # no positive at all: only the four lowest
        (0.5, 0.5, 3 / 9, 1.0),  # every absence already meets it: no band below the threshold
    ],
)
def test_the_band_bottom_is_the_highest_cut_whose_absences_meet_the_miss_rate(
    miss_rate: float, low: float, kept_miss: float, kept_share: float
) -> None:
    band = uncertainty_band(
        BELOW, BELOW_TRUTH, 0.5, target_precision=0.95, target_miss_rate=miss_rate
    )
    assert band.low == pytest.approx(low)
    assert band.miss_rate == pytest.approx(kept_miss)
    assert band.negative_share == pytest.approx(kept_share)
    assert band.high == 0.5  # the labels (0.8, 0.9) are all right: no band above


def test_the_band_bottom_is_zero_when_no_absence_can_be_trusted() -> None:
    band = uncertainty_band(BELOW, np.ones_like(BELOW_TRUTH), 0.5, 0.95, target_miss_rate=0.05)
    assert band.low == 0.0 and band.negative_share == 0.0 and band.miss_rate is None


def test_the_default_miss_rate_is_one_minus_the_target_precision() -> None:
    probs, truth = _validation()
    summary = automation(probs, truth, [0.5, 0.5], LABELS, AutomationSettings(draws=100))
    assert summary.target_miss_rate == pytest.approx(0.05)
    explicit = automation(
        probs,
        truth,
        [0.5, 0.5],
        LABELS,
        AutomationSettings(draws=100, target_miss_rate=0.05),
    )
    assert [c.band_low for c in explicit.classes] == [c.band_low for c in summary.classes]


def test_the_band_is_narrower_than_the_mirror_where_the_absences_are_safe() -> None:
    # a weak but rare class: its labels need a high cut for 0.95 precision (the mirror 2t - u
    # would reach 0 and flag every document), but its absences miss few positives
    rng = np.random.default_rng(1)
    n = 400
    truth = rng.random(n) < 0.05
    probs = np.clip(np.where(truth, rng.uniform(0.3, 1.0, n), rng.uniform(0.0, 0.6, n)), 0, 1)
    band = uncertainty_band(probs, truth, 0.3, target_precision=0.95)
    assert band.high > 0.6 and 2 * 0.3 - band.high < 0  # the mirror would start at 0
    assert band.low == 0.3  # absences below the threshold: no positive at all
    reviewed = (probs >= band.low) & (probs < band.high)
    mirrored = probs < band.high  # [max(0, 2t - u), u) = [0, u)
    assert reviewed.mean() < mirrored.mean() - 0.3


def test_on_one_class_the_issued_decisions_meet_both_targets_on_validation() -> None:
    rng = np.random.default_rng(2)
    n = 500
    truth = rng.random((n, 1)) < 0.3
    probs = np.clip(
        np.where(truth, rng.normal(0.7, 0.2, (n, 1)), rng.normal(0.3, 0.2, (n, 1))), 0, 1
    )
    summary = automation(probs, truth, [0.5], ["one"], AutomationSettings(draws=100, target_f1=0.5))
    (one,) = summary.classes
    assert one.automate and one.band_low < 0.5 < one.band_high
    assert summary.automated_precision is not None and summary.automated_precision >= 0.95
    assert summary.automated_miss_rate is not None and summary.automated_miss_rate <= 0.05
    inside = ((probs[:, 0] >= one.band_low) & (probs[:, 0] < one.band_high)).mean()
    assert summary.review_rate == pytest.approx(inside)
    # out of fold the edges come from the other folds: same shape of figures, honestly estimated
    assert summary.oof is not None and 0 < summary.oof.review_rate < 1
    assert summary.oof.automated_precision is not None


def test_a_class_whose_band_cannot_reach_the_precision_is_not_automated() -> None:
    probs, truth = _validation()
    flipped = truth.copy()
    flipped[:, 0] = ~truth[:, 0]  # its high scores are now all wrong
    summary = automation(probs, flipped, [0.5, 0.5], LABELS, AutomationSettings(draws=200))
    assert not summary.classes[0].automate


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=30))
def test_a_class_below_the_target_is_never_auto_decided(rows: list[tuple[float, float]]) -> None:
    probs, truth = _validation()
    summary = automation(probs, truth, [0.5, 0.5], LABELS, AutomationSettings(draws=200))
    assert [c.automate for c in summary.classes] == [True, False]
    served = np.asarray(rows)
    reviews = review(
        served,
        LABELS,
        [0.5, 0.5],
        [c.automate for c in summary.classes],
        [c.band_low for c in summary.classes],
        [c.band_high for c in summary.classes],
    )
    for probs_of_doc, decision in zip(served, reviews, strict=True):
        if probs_of_doc[1] >= 0.5:  # a "noise" label is predicted: a person must look
            assert decision.review
            assert any(
                r.label == "noise" and r.reason == "class_not_automated" for r in decision.reasons
            )
