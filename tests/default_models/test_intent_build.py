"""The intent build's figures: accuracy/macro-F1 without abstain, then the abstain rule's."""

from __future__ import annotations

import numpy as np
import pytest

from default_models.intent_build import intent_figures
from default_models.intent_corpus import Utterance

LABELS = ["order", "track", "cancel"]


def _utterances(intents: list[str | None]) -> list[Utterance]:
    return [Utterance(f"u{i}", intent) for i, intent in enumerate(intents)]


def test_figures_count_out_of_scope_as_wrong_when_answered() -> None:
    utterances = _utterances(["order", "order", "track", "cancel", None, None])
    probs = np.asarray(
        [
            [0.9, 0.05, 0.05],  # order, right, confident
            [0.2, 0.7, 0.1],  # order -> track, wrong, below the threshold
            [0.1, 0.85, 0.05],  # track, right, confident
            [0.05, 0.05, 0.9],  # cancel, right, confident
            [0.85, 0.1, 0.05],  # out of scope, answered: wrong
            [0.4, 0.3, 0.3],  # out of scope, turned down
        ]
    )
    figures = intent_figures(LABELS, probs, 0.8, utterances)
    assert figures["utterances"] == 4 and figures["out_of_scope"] == 2
    assert figures["accuracy"] == 0.75
    # order F1 2/3 (P 1, R 1/2), track 2/3 (P 1/2, R 1), cancel 1
    assert figures["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3, abs=1e-4)
    assert figures["in_scope_answered"] == 0.75
    assert figures["precision_answered"] == 0.75  # 3 right of 4 answered (one out of scope)
    assert figures["out_of_scope_rejected"] == 0.5


def test_without_a_threshold_everything_is_answered() -> None:
    utterances = _utterances(["order", None])
    probs = np.asarray([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33]])
    figures = intent_figures(LABELS, probs, None, utterances)
    assert figures["in_scope_answered"] == 1.0 and figures["out_of_scope_rejected"] == 0.0
    assert figures["precision_answered"] == 0.5
