"""The word decoder for softmax heads (constrained zero-transition Viterbi, marginal entity
scores) and the cls+words CRF layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from families.ner.decoding import WordDecoder
from families.ner.spec import NerSpec

BIOES = ["O", "B-X", "I-X", "E-X", "S-X"]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
def test_softmax_head_decodes_the_best_valid_sequence_and_scores_from_its_marginals(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    scores = _log_softmax(rng.normal(0, 2, size=(4, len(BIOES))))
    decoder = WordDecoder.from_spec(NerSpec(head="softmax", tag_scheme="BIOES"), BIOES)
    decoded = decoder.decode([scores])
    valid = {
        path: float(np.exp(scores[np.arange(4), path].sum()))
        for path in itertools.product(range(len(BIOES)), repeat=4)
        if decoder.scheme.is_valid(np.asarray(path))
    }
    best = max(valid, key=valid.__getitem__)
    assert tuple(decoded.word_tags(0)) == best
    total = sum(valid.values())
    for first, last, _ in decoder.scheme.spans(np.asarray(best)):
        segment = best[first : last + 1]
        expected = sum(p for path, p in valid.items() if path[first : last + 1] == segment) / total
        assert decoder.entity_score(decoded, 0, first, last) == pytest.approx(expected, abs=1e-6)


def test_softmax_head_without_constraints_is_per_word_argmax() -> None:
    rng = np.random.default_rng(0)
    scores = _log_softmax(rng.normal(0, 3, size=(9, len(BIOES))))
    spec = NerSpec(head="softmax", tag_scheme="BIOES", constrain_transitions=False)
    decoder = WordDecoder.from_spec(spec, BIOES)
    decoded = decoder.decode([scores])
    assert (decoded.word_tags(0) == scores.argmax(axis=1)).all()
    single = decoder.entity_score(decoded, 0, 0, 0)  # one word: its own softmax probability
    assert single == pytest.approx(np.exp(scores[0].max()))


def test_cls_layout_holds_the_cls_position_to_o_and_drops_it() -> None:
    labels = ["O", "B-X", "I-X"]
    crf = {"start": [0.0, 0.0, 0.0], "end": [0.0] * 3, "transitions": [[0.0] * 3] * 3}
    spec = NerSpec(crf=crf, crf_positions="cls+words")  # type: ignore[arg-type]
    decoder = WordDecoder.from_spec(spec, labels)
    words = np.asarray([[0.0, 1.0, 5.0]])  # I-X is best alone, but cannot follow O
    decoded = decoder.decode([words], [np.asarray([0.0, 9.0, 0.0])])  # CLS prefers B-X
    assert decoded.tags[0, 0] == 0 and decoded.word_tags(0).tolist() == [1]
