"""Single-label abstain threshold for a stated precision (the machinery issue 11 will wire)."""

from __future__ import annotations

import numpy as np
import pytest

from export.calibration.abstain import abstain_threshold, estimate_abstain
from export.calibration.options import Settings


def _brute_force(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """Lowest observed confidence whose answered set reaches the precision, if any."""
    best = None
    for t in sorted(set(confidence.tolist()), reverse=True):
        answered = confidence >= t
        if correct[answered].mean() >= target:
            best = t
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.8, 0.9, 0.97])
def test_threshold_is_the_most_answers_reaching_the_precision(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.uniform(0.2, 1.0, 120), 2)
    correct = rng.random(120) < confidence  # right more often when confident
    threshold = abstain_threshold(confidence, correct, target)
    lowest = _brute_force(confidence, correct, target)
    if lowest is None:
        assert not (confidence >= threshold).any()
        return
    assert ((confidence >= threshold) == (confidence >= lowest)).all()
    assert threshold not in set(confidence.tolist())  # a midpoint, not an observed value
    assert correct[confidence >= threshold].mean() >= target


def test_out_of_fold_estimate_brackets_fresh_data_and_is_seeded() -> None:
    def draw(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        confidence = rng.uniform(0.3, 1.0, n)
        return confidence, rng.random(n) < confidence

    confidence, correct = draw(0, 600)
    estimate = estimate_abstain(confidence, correct, 0.9, Settings(draws=300))
    assert estimate == estimate_abstain(confidence, correct, 0.9, Settings(draws=300))
    assert estimate.precision >= 0.9 and 0 < estimate.coverage < 1
    fresh_confidence, fresh_correct = draw(1, 20000)
    answered = fresh_confidence >= estimate.threshold
    fresh = fresh_correct[answered].mean()
    assert estimate.oof_precision.low <= fresh <= estimate.oof_precision.high
    assert estimate.oof_coverage == pytest.approx(answered.mean(), abs=0.06)
    with pytest.raises(ValueError, match="target precision"):
        abstain_threshold(confidence, correct, 1.5)
