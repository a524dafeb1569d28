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


def test_the_band_is_the_lowest_cut_reaching_the_target_precision() -> None:
    probs = np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.3, 0.2])
    truth = np.array([1, 1, 1, 0, 1, 0, 0], dtype=bool)
    band = uncertainty_band(probs, truth, threshold=0.5, target_precision=0.95)
    # labels >= 0.5 have precision 4/5; >= 0.7 reach 1.0: the cut sits between 0.7 and 0.65
    assert band.high == pytest.approx(0.675) and band.low == pytest.approx(0.325)
    assert band.precision == 1.0 and band.share == pytest.approx(3 / 5) and band.reached
    relaxed = uncertainty_band(probs, truth, threshold=0.5, target_precision=0.8)
    assert relaxed.high == relaxed.low == 0.5  # the threshold's own labels reach 0.8: no band
    hopeless = uncertainty_band(probs, ~truth, threshold=0.5, target_precision=0.95)
    assert not hopeless.reached


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
