"""Ensemble weights per class (export.calibration.ensemble) and the served combination
(service.ensemble) on hand-made members: a mixture ships only where it beats the best single
member out of fold with a paired 95% interval above 0."""

from __future__ import annotations

import numpy as np
import pytest

from export.calibration.ensemble import EnsembleSettings, select_ensemble, weight_grid
from service.ensemble import EnsembleMember as Member
from service.ensemble import EnsembleSpec, combine, decide

MEMBERS = [
    Member(name="longformer", manifest_sha256="a" * 64),
    Member(name="tfidf", manifest_sha256="b" * 64),
]
SETTINGS = EnsembleSettings(draws=300)


def _truth(n: int = 200, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < 0.5


def test_the_weight_grid_is_the_simplex_in_steps_one_hot_first() -> None:
    grid = weight_grid(2, 10)
    assert grid.shape == (11, 2)
    assert {tuple(w) for w in grid[:2].tolist()} == {(0.0, 1.0), (1.0, 0.0)}
    assert np.allclose(grid.sum(axis=1), 1.0)
    assert weight_grid(3, 2).shape == (6, 3)


def test_complementary_members_ship_a_mixture() -> None:
    # longformer knows the first half of the documents, tfidf the second; each says 0.5 elsewhere
    y = _truth()
    half = np.arange(y.size) < y.size // 2
    sure = np.where(y, 0.9, 0.1)
    a = np.where(half, sure, 0.5)
    b = np.where(half, 0.5, sure)
    spec = select_ensemble(
        np.stack([a, b])[:, :, None], y[:, None], ["appeal"], MEMBERS, "val.jsonl", SETTINGS
    )
    (appeal,) = spec.classes
    assert appeal.source == "ensemble" and appeal.member is None
    assert 0 < appeal.weights[0] < 1 and appeal.oof_gain_low > 0
    assert appeal.oof_f1_ensemble == 1.0 and appeal.oof_f1_best_member < 0.9
    served, decided = decide(np.stack([a, b])[:, :, None], spec)
    w = appeal.weights
    assert np.allclose(served[:, 0], w[0] * a + w[1] * b)
    assert (decided[:, 0] == y).all()


def test_a_dominant_member_is_used_alone_for_its_class() -> None:
    y = _truth()
    perfect = np.where(y, 0.8, 0.2)
    noise = np.random.default_rng(1).random(y.size)
    two = np.stack([np.stack([noise, perfect], axis=1), np.stack([perfect, noise], axis=1)])
    truth = np.stack([y, y], axis=1)
    spec = select_ensemble(two, truth, ["appeal", "dismiss"], MEMBERS, "val.jsonl", SETTINGS)
    appeal, dismiss = spec.classes
    assert (appeal.source, appeal.member, appeal.weights) == ("member", 1, [0.0, 1.0])
    assert (dismiss.source, dismiss.member, dismiss.weights) == ("member", 0, [1.0, 0.0])
    assert appeal.oof_gain_low <= 0 and appeal.oof_f1_best_member == 1.0


def test_identical_members_never_ship_a_mixture() -> None:
    y = _truth()
    p = np.clip(np.where(y, 0.6, 0.4) + np.random.default_rng(2).normal(0, 0.15, y.size), 0, 1)
    spec = select_ensemble(np.stack([p, p])[:, :, None], y[:, None], ["x"], MEMBERS, "v", SETTINGS)
    assert spec.classes[0].source == "member" and spec.classes[0].member == 0


def test_the_served_combination_is_the_per_class_weighted_mean() -> None:
    probs = np.array([[[0.2, 0.9]], [[0.6, 0.1]]])  # [members, documents, classes]
    weights = np.array([[0.25, 0.75], [1.0, 0.0]])  # [classes, members]
    assert combine(probs, weights).tolist() == [[0.25 * 0.2 + 0.75 * 0.6, 0.9]]
    with pytest.raises(ValueError, match="members"):
        combine(probs, weights.T[:1])


def test_the_manifest_section_refuses_weights_that_are_not_a_mixture() -> None:
    base = {
        "label": "x",
        "threshold": 0.5,
        "oof_f1_ensemble": 0.7,
        "oof_f1_best_member": 0.6,
        "oof_gain_low": 0.01,
        "oof_gain_high": 0.2,
    }
    with pytest.raises(ValueError, match="sum to 1"):
        EnsembleSpec.model_validate(
            {
                "members": [m.model_dump() for m in MEMBERS],
                "folds": 5,
                "seed": 0,
                "draws": 10,
                "grid": 10,
                "validation": "v",
                "classes": [{**base, "weights": [0.5, 0.6], "source": "ensemble"}],
            }
        )
