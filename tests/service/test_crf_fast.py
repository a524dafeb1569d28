"""The tuned CRF decoder gives exactly what the plain one gave: every tag, every score.

Random emissions, lengths (ragged batches included), CRF scores with and without each scheme's
constraints (BIO, BIOES, BILOU penalties, as the service serves them), integer scores to force
ties. The oracle is ``crf_reference`` (the decoder before tuning).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from families.ner.crf import CrfParams, forward_backward, viterbi_decode
from families.ner.decoding import WordDecoder
from families.ner.tagging import TagScheme
from tests.service import crf_reference

SCHEMES = {
    "BIO": ["O", "B-A", "I-A", "B-B", "I-B"],
    "BIOES": ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B"],
    "BILOU": ["O", "B-A", "I-A", "L-A", "U-A"],
}

cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "scheme": st.sampled_from([None, *SCHEMES]),  # None: unconstrained, 1-6 tags
        "num_tags": st.integers(1, 6),
        "lengths": st.lists(st.integers(1, 12), min_size=1, max_size=6),
        "scale": st.sampled_from([0.1, 1.0, 10.0, 100.0]),
        "integer_scores": st.booleans(),
    }
)


def _problem(case: dict) -> tuple[np.ndarray, np.ndarray, CrfParams]:
    rng = np.random.default_rng(case["seed"])
    labels = SCHEMES.get(case["scheme"] or "", [])
    k = len(labels) or case["num_tags"]
    lengths = np.asarray(case["lengths"], dtype=np.int64)

    def draw(*shape: int) -> np.ndarray:
        x = rng.normal(0.0, case["scale"], size=shape)
        return np.round(x) if case["integer_scores"] else x

    # Padding past each length is random too: it must never matter.
    emissions = draw(len(lengths), int(lengths.max()) + int(rng.integers(0, 3)), k)
    params = CrfParams(start=draw(k), end=draw(k), transitions=draw(k, k))
    if labels:
        params = params.with_penalties(TagScheme.parse(labels).penalties())
    return emissions, lengths, params


@settings(max_examples=400, deadline=None)
@given(cases)
def test_viterbi_gives_the_same_tags_as_before(case: dict) -> None:
    emissions, lengths, params = _problem(case)
    expected = crf_reference.viterbi_decode(emissions, lengths, params)
    np.testing.assert_array_equal(viterbi_decode(emissions, lengths, params), expected)


@settings(max_examples=300, deadline=None)
@given(cases)
def test_forward_backward_gives_the_same_scores_as_before(case: dict) -> None:
    emissions, lengths, params = _problem(case)
    alpha, beta, log_z = crf_reference.forward_backward(emissions, lengths, params)
    fb = forward_backward(emissions, lengths, params)
    np.testing.assert_array_equal(fb.log_partition, log_z)
    for row, n in enumerate(lengths):  # past a row's length the scores are not used
        np.testing.assert_array_equal(fb.alpha[row, :n], alpha[row, :n])
        np.testing.assert_array_equal(fb.beta[row, :n], beta[row, :n])


def test_a_uniform_batch_and_a_ragged_batch_agree_row_by_row() -> None:
    """Both code paths (all rows full length, and rows ending early) give each row its tags."""
    rng = np.random.default_rng(3)
    k = 5
    params = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    emissions = rng.normal(size=(4, 9, k))
    lengths = np.asarray([9, 3, 9, 1])
    ragged = viterbi_decode(emissions, lengths, params)
    for row, n in enumerate(lengths):
        alone = viterbi_decode(emissions[row : row + 1, :n], np.asarray([n]), params)
        np.testing.assert_array_equal(ragged[row, :n], alone[0])
        assert (ragged[row, n:] == -1).all()


@settings(max_examples=200, deadline=None)
@given(cases, st.booleans())
def test_entity_scores_at_once_equal_one_by_one(case: dict, cls_lead: bool) -> None:
    """The pipeline scores every entity of a batch in one call: the same floats as one by one."""
    emissions, lengths, params = _problem(case)
    scheme = TagScheme.parse(["O"])  # decoding and scoring use only the CRF scores
    decoder = WordDecoder(scheme, params, 0 if cls_lead else None)
    words = [emissions[row, : lengths[row]] for row in range(len(lengths))]
    cls = [emissions[row, 0] for row in range(len(lengths))] if cls_lead else None
    decoded = decoder.decode(words, cls)
    spans = [
        (row, first, last)
        for row, n in enumerate(lengths)
        for first in range(n)
        for last in range(first, n, 3)  # many lengths, long ones included
    ]
    expected = [decoder.entity_score(decoded, row, first, last) for row, first, last in spans]
    assert decoder.entity_scores(decoded, spans) == expected
