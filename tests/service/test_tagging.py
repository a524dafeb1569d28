"""BIO scheme: validation, constrained decoding never yields invalid sequences, spans."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.ner.crf import CrfParams, viterbi_decode
from service.ner.tagging import BioScheme, TagSchemeError

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["B-PER", "I-PER"], "'O' exactly once"),
        (["O", "PER"], "not BIO"),
        (["O", "X-PER"], "not BIO"),
        (["O", "I-PER"], "no matching B- tag"),
        (["O", "B-PER", "B-PER"], "duplicate"),
    ],
)
def test_rejects_non_bio_label_lists(labels: list[str], message: str) -> None:
    with pytest.raises(TagSchemeError, match=message):
        BioScheme.parse(labels)


def test_penalties_forbid_exactly_the_invalid_moves() -> None:
    scheme = BioScheme.parse(LABELS)
    start, transitions = scheme.penalties()
    assert [s < 0 for s in start] == [False, False, True, False, True, False, True]
    ix = {t: i for i, t in enumerate(LABELS)}
    assert transitions[ix["O"], ix["I-PER"]] < 0
    assert transitions[ix["B-LOC"], ix["I-PER"]] < 0
    assert transitions[ix["I-LOC"], ix["I-PER"]] < 0
    assert transitions[ix["B-PER"], ix["I-PER"]] == 0
    assert transitions[ix["I-PER"], ix["I-PER"]] == 0
    assert transitions[ix["I-PER"], ix["B-LOC"]] == 0
    assert transitions[ix["O"], ix["B-ORG"]] == 0
    assert np.isfinite(transitions).all()


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    scale=st.sampled_from([1.0, 10.0, 100.0]),
)
def test_constrained_viterbi_never_yields_invalid_bio(
    seed: int, lengths: list[int], scale: float
) -> None:
    rng = np.random.default_rng(seed)
    scheme = BioScheme.parse(LABELS)
    k = len(LABELS)
    lengths_arr = np.asarray(lengths)
    emissions = rng.normal(0, scale, size=(len(lengths), max(lengths), k))
    # Bias towards I- tags so that the unconstrained optimum is usually invalid.
    emissions[:, :, scheme.is_inside] += scale
    params = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    tags = viterbi_decode(emissions, lengths_arr, params.with_penalties(*scheme.penalties()))
    for row, n in zip(tags, lengths, strict=True):
        assert scheme.is_valid(row[:n])


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["O", "B-PER", "I-PER", "O"], [(1, 2, "PER")]),
        (["B-PER", "B-PER", "I-PER"], [(0, 0, "PER"), (1, 2, "PER")]),
        (["B-PER", "I-LOC", "I-LOC"], [(0, 0, "PER"), (1, 2, "LOC")]),  # stray I opens an entity
        (["I-PER"], [(0, 0, "PER")]),
        (["O", "O"], []),
        (["B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-ORG"], [(0, 1, "LOC"), (2, 4, "ORG")]),
    ],
)
def test_spans_from_tags(tags: list[str], expected: list[tuple[int, int, str]]) -> None:
    scheme = BioScheme.parse(LABELS)
    ids = np.asarray([LABELS.index(t) for t in tags])
    assert scheme.spans(ids) == expected
