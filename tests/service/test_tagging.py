"""Tag schemes (BIO, BIOES, BILOU): validation, constrained decoding never yields invalid
sequences, spans."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from families.ner.crf import CrfParams, viterbi_decode
from families.ner.tagging import END, INSIDE, TagScheme, TagSchemeError

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["B-PER", "I-PER"], "'O' exactly once"),
        (["O", "PER"], "not BIO/BIOES/BILOU"),
        (["O", "X-PER"], "not BIO/BIOES/BILOU"),
        (["O", "I-PER"], r"BIO tags \['B-PER'\] are missing"),
        (["O", "B-PER", "B-PER"], "duplicate"),
    ],
)
def test_rejects_non_bio_label_lists(labels: list[str], message: str) -> None:
    with pytest.raises(TagSchemeError, match=message):
        TagScheme.parse(labels)


def test_penalties_forbid_exactly_the_invalid_moves() -> None:
    scheme = TagScheme.parse(LABELS)
    penalties = scheme.penalties()
    start, transitions = penalties.start, penalties.transitions
    assert (penalties.end == 0).all()  # BIO may end inside an entity
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


BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
BILOU = [t.replace("E-", "L-").replace("S-", "U-") for t in BIOES]


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    scale=st.sampled_from([1.0, 10.0, 100.0]),
    labels=st.sampled_from([LABELS, BIOES, BILOU]),
    softmax=st.booleans(),  # zero transitions, as a softmax head decodes
)
def test_constrained_viterbi_never_yields_invalid_sequences(
    seed: int, lengths: list[int], scale: float, labels: list[str], softmax: bool
) -> None:
    rng = np.random.default_rng(seed)
    scheme = TagScheme.parse(labels)
    k = len(labels)
    lengths_arr = np.asarray(lengths)
    emissions = rng.normal(0, scale, size=(len(lengths), max(lengths), k))
    # Bias towards continuation tags so that the unconstrained optimum is usually invalid.
    emissions[:, :, np.isin(scheme.role, (INSIDE, END))] += scale
    params = (
        CrfParams.zeros(k)
        if softmax
        else CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    )
    tags = viterbi_decode(emissions, lengths_arr, params.with_penalties(scheme.penalties()))
    for row, n in zip(tags, lengths, strict=True):
        assert scheme.is_valid(row[:n])


def test_bioes_penalties_also_constrain_the_end_and_what_follows_an_open_entity() -> None:
    scheme = TagScheme.parse(BIOES)
    assert scheme.name == "BIOES"
    p = scheme.penalties()
    ix = {t: i for i, t in enumerate(BIOES)}
    forbidden = [
        ("O", "I-PER"),
        ("O", "E-PER"),
        ("E-PER", "I-PER"),
        ("S-PER", "E-PER"),
        ("B-PER", "O"),
        ("B-PER", "B-LOC"),
        ("I-PER", "S-PER"),
        ("B-PER", "E-LOC"),
        ("I-PER", "I-LOC"),
    ]
    allowed = [
        ("B-PER", "I-PER"),
        ("B-PER", "E-PER"),
        ("I-PER", "E-PER"),
        ("E-PER", "B-LOC"),
        ("S-PER", "S-PER"),
        ("O", "S-LOC"),
        ("E-LOC", "O"),
    ]
    assert all(p.transitions[ix[a], ix[b]] < 0 for a, b in forbidden)
    assert all(p.transitions[ix[a], ix[b]] == 0 for a, b in allowed)
    assert [t for t in BIOES if p.start[ix[t]] < 0] == ["I-PER", "E-PER", "I-LOC", "E-LOC"]
    assert [t for t in BIOES if p.end[ix[t]] < 0] == ["B-PER", "I-PER", "B-LOC", "I-LOC"]
    bilou = TagScheme.parse(BILOU)
    assert bilou.name == "BILOU"
    for field in ("start", "end", "transitions"):
        assert (getattr(bilou.penalties(), field) == getattr(p, field)).all()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["O", "B-PER", "I-PER", "E-PER", "U-PER"], "mix BIOES and BILOU"),
        (["O", "B-PER", "I-PER", "S-PER"], r"BIOES tags \['E-PER'\] are missing"),
        (["O", "B-PER", "M-PER"], r"tags \['M-PER'\] are not"),
    ],
)
def test_rejects_broken_bioes_sets(labels: list[str], message: str) -> None:
    with pytest.raises(TagSchemeError, match=message):
        TagScheme.parse(labels)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], [(0, 0, "PER"), (1, 3, "LOC")]),
        (["B-PER", "E-PER", "S-PER"], [(0, 1, "PER"), (2, 2, "PER")]),
        (["E-PER", "I-PER"], [(0, 0, "PER"), (1, 1, "PER")]),  # stray continuations
    ],
)
def test_bioes_spans(tags: list[str], expected: list[tuple[int, int, str]]) -> None:
    scheme = TagScheme.parse(BIOES)
    assert scheme.spans(np.asarray([BIOES.index(t) for t in tags])) == expected


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
    scheme = TagScheme.parse(LABELS)
    ids = np.asarray([LABELS.index(t) for t in tags])
    assert scheme.spans(ids) == expected
