"""Viterbi and forward-backward against pytorch-crf and brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchcrf import CRF

from families.ner.crf import CrfParams, forward_backward, segment_probability, viterbi_decode

cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "num_tags": st.integers(1, 7),
        "lengths": st.lists(st.integers(1, 9), min_size=1, max_size=4),
        "scale": st.sampled_from([0.1, 1.0, 10.0]),
        "integer_scores": st.booleans(),  # forces ties: tie-breaking must match too
    }
)


def _random_problem(case: dict) -> tuple[np.ndarray, np.ndarray, CrfParams]:
    rng = np.random.default_rng(case["seed"])
    k, lengths = case["num_tags"], np.asarray(case["lengths"], dtype=np.int64)

    def draw(*shape: int) -> np.ndarray:
        x = rng.normal(0.0, case["scale"], size=shape)
        return np.round(x) if case["integer_scores"] else x

    emissions = draw(len(lengths), int(lengths.max()), k)
    params = CrfParams(start=draw(k), end=draw(k), transitions=draw(k, k))
    return emissions, lengths, params


def _torch_crf(params: CrfParams) -> CRF:
    crf = CRF(params.num_tags, batch_first=True).double()
    with torch.no_grad():
        crf.start_transitions.copy_(torch.from_numpy(params.start))
        crf.end_transitions.copy_(torch.from_numpy(params.end))
        crf.transitions.copy_(torch.from_numpy(params.transitions))
    return crf


@settings(max_examples=300, deadline=None)
@given(cases)
def test_viterbi_equals_pytorch_crf_decode(case: dict) -> None:
    emissions, lengths, params = _random_problem(case)
    mask = torch.from_numpy(np.arange(emissions.shape[1])[None, :] < lengths[:, None])
    expected = _torch_crf(params).decode(torch.from_numpy(emissions), mask=mask)
    tags = viterbi_decode(emissions, lengths, params)
    assert [list(row[:n]) for row, n in zip(tags, lengths, strict=True)] == expected
    assert all((row[n:] == -1).all() for row, n in zip(tags, lengths, strict=True))


@settings(max_examples=100, deadline=None)
@given(cases)
def test_log_partition_equals_pytorch_crf_normalizer(case: dict) -> None:
    emissions, lengths, params = _random_problem(case)
    mask = torch.from_numpy(np.arange(emissions.shape[1])[None, :] < lengths[:, None])
    with torch.no_grad():
        expected = _torch_crf(params)._compute_normalizer(
            torch.from_numpy(emissions).transpose(0, 1), mask.T
        )
    fb = forward_backward(emissions, lengths, params)
    np.testing.assert_allclose(fb.log_partition, expected.numpy(), rtol=1e-9)


def _brute_force(emissions: np.ndarray, params: CrfParams) -> dict[tuple[int, ...], float]:
    n, k = emissions.shape
    scores = {}
    for path in itertools.product(range(k), repeat=n):
        s = params.start[path[0]] + params.end[path[-1]] + emissions[np.arange(n), path].sum()
        s += sum(params.transitions[a, b] for a, b in itertools.pairwise(path))
        scores[path] = s
    z = np.logaddexp.reduce(list(scores.values()))
    return {p: float(np.exp(s - z)) for p, s in scores.items()}


@pytest.mark.parametrize("seed", range(5))
def test_marginals_and_segment_probability_match_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 4, 3
    emissions = rng.normal(size=(1, n, k))
    params = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    probs = _brute_force(emissions[0], params)
    fb = forward_backward(emissions, np.asarray([n]), params)
    marginals = fb.marginals()[0]
    for t, tag in itertools.product(range(n), range(k)):
        expected = sum(p for path, p in probs.items() if path[t] == tag)
        assert marginals[t, tag] == pytest.approx(expected, abs=1e-12)
    tags = viterbi_decode(emissions, np.asarray([n]), params)[0]
    for first, last in [(0, 0), (1, 2), (0, 3), (3, 3)]:
        segment = tuple(tags[first : last + 1])
        expected = sum(p for path, p in probs.items() if path[first : last + 1] == segment)
        got = segment_probability(fb, emissions, params, 0, tags, first, last)
        assert got == pytest.approx(expected, abs=1e-12)


def test_padding_does_not_change_results() -> None:
    rng = np.random.default_rng(7)
    params = CrfParams(rng.normal(size=4), rng.normal(size=4), rng.normal(size=(4, 4)))
    short = rng.normal(size=(1, 3, 4))
    padded = np.concatenate([short, rng.normal(size=(1, 5, 4)) * 100], axis=1)
    lengths = np.asarray([3])
    assert (
        viterbi_decode(padded, lengths, params)[0, :3] == viterbi_decode(short, lengths, params)[0]
    ).all()
    np.testing.assert_allclose(
        forward_backward(padded, lengths, params).log_partition,
        forward_backward(short, lengths, params).log_partition,
    )


def test_rejects_bad_shapes() -> None:
    params = CrfParams(np.zeros(3), np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="emissions must be"):
        viterbi_decode(np.zeros((1, 2, 4)), np.asarray([2]), params)
    with pytest.raises(ValueError, match="between 1"):
        viterbi_decode(np.zeros((1, 2, 3)), np.asarray([0]), params)
