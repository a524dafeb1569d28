"""Threshold calibration against brute force with scikit-learn's F1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from export.postures.thresholds import best_f1_threshold, calibrate, micro_macro, prf


def _brute_force(probs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    best_t, best_f1 = 1.0, -1.0
    for t in sorted(set(probs.tolist()), reverse=True):  # highest threshold wins ties
        f1 = f1_score(truth, probs >= t, zero_division=0.0)
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = t, f1
    return best_t, best_f1


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    rounding=st.sampled_from([None, 1, 2]),  # rounding creates ties between probabilities
)
def test_best_threshold_equals_brute_force(seed: int, n: int, rounding: int | None) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    probs = np.clip(rng.normal(0.3 + 0.3 * truth, 0.2), 0, 1)
    if rounding is not None:
        probs = np.round(probs, rounding)
    if not truth.any():
        assert best_f1_threshold(probs, truth) == (1.0, 0.0)
        return
    threshold, f1 = best_f1_threshold(probs, truth)
    expected_t, expected_f1 = _brute_force(probs, truth)
    assert f1 == pytest.approx(expected_f1, abs=1e-12)
    assert threshold == expected_t


def test_rare_classes_fall_back_to_the_global_threshold() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((200, 4)) < np.asarray([0.3, 0.4, 0.01, 0.2])
    truth[:, 2] = False
    truth[:3, 2] = True
    probs = np.clip(rng.normal(0.35 + 0.35 * truth, 0.15), 0, 1)
    result = calibrate(probs, truth, min_support=5)
    assert result.fallback.tolist() == [False, False, True, False]
    assert result.thresholds[2] == result.global_threshold
    assert result.global_threshold == best_f1_threshold(probs.ravel(), truth.ravel())[0]
    for c in (0, 1, 3):
        assert result.thresholds[c] == best_f1_threshold(probs[:, c], truth[:, c])[0]
    micro, macro = micro_macro(probs, truth, result.thresholds)
    predicted = probs >= result.thresholds
    assert micro == pytest.approx(f1_score(truth, predicted, average="micro", zero_division=0.0))
    assert macro == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0.0))
    assert prf(predicted[:, 0], truth[:, 0]).f1 == pytest.approx(
        f1_score(truth[:, 0], predicted[:, 0])
    )
