"""Label marginals of entity spans against brute-force enumeration of every tag sequence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from families.ner.crf import CrfParams, forward_backward, segment_probability, viterbi_decode
from families.ner.marginals import alternatives, entity_tags, label_marginals
from families.ner.tagging import TagScheme

SCHEMES = {
    "BIO": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-FOOD", "I-FOOD"],
    "BIOES": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
    "BILOU": ["O", "U-PER", "B-PER", "I-PER", "L-PER", "B-LOC", "I-LOC", "L-LOC", "U-LOC"],
}


def test_entity_tags_per_scheme() -> None:
    bio = TagScheme.parse(SCHEMES["BIO"])
    bioes = TagScheme.parse(SCHEMES["BIOES"])
    names = [bio.labels[t] for t in entity_tags(bio, 1, 3)]
    assert names == ["B-LOC", "I-LOC", "I-LOC"]
    assert [bioes.labels[t] for t in entity_tags(bioes, 0, 1)] == ["S-PER"]
    assert [bioes.labels[t] for t in entity_tags(bioes, 1, 3)] == ["B-LOC", "I-LOC", "E-LOC"]
    with pytest.raises(ValueError, match="at least one word"):
        entity_tags(bio, 0, 0)


def brute_force(
    emissions: np.ndarray, params: CrfParams, scheme: TagScheme, first: int, last: int
) -> dict[str, float]:
    steps, k = emissions.shape
    scores, seqs = [], []
    for seq in itertools.product(range(k), repeat=steps):
        s = params.start[seq[0]] + params.end[seq[-1]] + emissions[np.arange(steps), seq].sum()
        s += sum(params.transitions[a, b] for a, b in itertools.pairwise(seq))
        scores.append(s)
        seqs.append(seq)
    probs = np.exp(np.asarray(scores) - np.logaddexp.reduce(scores))
    out = {}
    for kind, name in enumerate(scheme.entity_types):
        want = tuple(entity_tags(scheme, kind, last - first + 1).tolist())
        out[name] = float(
            sum(p for p, q in zip(probs, seqs, strict=True) if q[first : last + 1] == want)
        )
    return out


@pytest.mark.parametrize("scheme_name", list(SCHEMES))
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_label_marginals_equal_enumeration(scheme_name: str, constrained: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scheme = TagScheme.parse(SCHEMES[scheme_name])
    k = len(scheme.labels)
    params = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    if constrained:
        params = params.with_penalties(scheme.penalties())
    steps = 4
    emissions = rng.normal(scale=2.0, size=(1, steps, k))
    lengths = np.asarray([steps])
    fb = forward_backward(emissions, lengths, params)
    for first, last in [(0, 0), (1, 2), (0, 3), (3, 3)]:
        got = label_marginals(fb, emissions, params, scheme, 0, first, last)
        want = brute_force(emissions[0], params, scheme, first, last)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12)
        assert sum(got.values()) <= 1.0 + 1e-9


def test_decoded_label_marginal_is_the_entity_score() -> None:
    rng = np.random.default_rng(5)
    scheme = TagScheme.parse(SCHEMES["BIOES"])
    k = len(scheme.labels)
    params = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    params = params.with_penalties(scheme.penalties())
    emissions = rng.normal(scale=3.0, size=(1, 6, k))
    lengths = np.asarray([6])
    tags = viterbi_decode(emissions, lengths, params)
    fb = forward_backward(emissions, lengths, params)
    spans = scheme.spans(tags[0])
    assert spans
    for first, last, label in spans:
        score = segment_probability(fb, emissions, params, 0, tags[0], first, last)
        marginals = label_marginals(fb, emissions, params, scheme, 0, first, last)
        assert marginals[label] == pytest.approx(score, rel=1e-12)


def test_alternatives_exclude_the_label_and_sort_by_probability() -> None:
    marginals = {"PER": 0.7, "LOC": 0.05, "FOOD": 0.2, "ORG": 0.05}
    assert alternatives(marginals, "PER", 2) == [("FOOD", 0.2), ("LOC", 0.05)]
    assert alternatives(marginals, "PER", 0) == []
    assert [n for n, _ in alternatives(marginals, "FOOD", 9)] == ["PER", "LOC", "ORG"]
