"""Linear-chain CRF inference in numpy: Viterbi decoding and forward-backward marginals.

The arithmetic mirrors ``torchcrf.CRF`` (pytorch-crf) step by step, including the order of the
additions and first-index tie-breaking, so that unconstrained decoding yields exactly the tags that
``CRF.decode`` yields on the same emissions. Everything is vectorised over the batch and the tags;
the only Python loop runs over time steps, which Viterbi needs by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from families.ner.tagging import Penalties

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class CrfParams:
    """Scores of a trained CRF: ``transitions[i, j]`` scores moving from tag i to tag j."""

    start: FloatArray
    end: FloatArray
    transitions: FloatArray

    @classmethod
    def from_lists(
        cls, start: list[float], end: list[float], transitions: list[list[float]]
    ) -> CrfParams:
        params = cls(
            start=np.asarray(start, dtype=np.float64),
            end=np.asarray(end, dtype=np.float64),
            transitions=np.asarray(transitions, dtype=np.float64),
        )
        k = params.start.shape[0]
        if params.end.shape != (k,) or params.transitions.shape != (k, k):
            raise ValueError(
                f"CRF shapes disagree: start {params.start.shape}, end {params.end.shape}, "
                f"transitions {params.transitions.shape}"
            )
        return params

    @property
    def num_tags(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def zeros(cls, num_tags: int) -> CrfParams:
        """No learned transitions: what a softmax token classifier decodes with."""
        return cls(np.zeros(num_tags), np.zeros(num_tags), np.zeros((num_tags, num_tags)))

    def with_penalties(self, penalties: Penalties) -> CrfParams:
        """Return the same CRF with (finite) penalties added, e.g. to forbid invalid BIO moves."""
        return CrfParams(
            self.start + penalties.start,
            self.end + penalties.end,
            self.transitions + penalties.transitions,
        )


def _check(emissions: FloatArray, lengths: IntArray, params: CrfParams) -> None:
    if emissions.ndim != 3 or emissions.shape[2] != params.num_tags:
        raise ValueError(
            f"emissions must be [batch, time, {params.num_tags}], got {emissions.shape}"
        )
    if lengths.shape != (emissions.shape[0],):
        raise ValueError("one length per sequence is required")
    if emissions.shape[0] and (lengths.min() < 1 or lengths.max() > emissions.shape[1]):
        raise ValueError("every length must be between 1 and the padded time dimension")


def viterbi_decode(emissions: FloatArray, lengths: IntArray, params: CrfParams) -> IntArray:
    """Best tag sequence per row of ``emissions`` [B, T, K]; -1 past each row's length.

    One step costs a handful of numpy calls on preallocated buffers (a 20-word text is ~20 steps
    of a few microseconds): the row mask is built once, rows past their length keep their score
    through one ``copyto`` (only when lengths differ), and their back-pointers become the identity
    so backtracking needs no per-step masking.
    """
    _check(emissions, lengths, params)
    batch, steps, k = emissions.shape
    tags = np.full((batch, steps), -1, dtype=np.int64)
    if batch == 0:
        return tags
    score = params.start + emissions[:, 0]
    history = np.empty((max(steps - 1, 0), batch, k), dtype=np.int64)
    active = np.arange(1, steps)[:, None] < lengths[None, :]  # [T - 1, B]: step t - 1 updates
    ragged = not active.all()
    candidates = np.empty((batch, k, k))
    best = np.empty((batch, k))
    for t in range(1, steps):
        # Same additions in the same order as pytorch-crf: (score + transition) + emission.
        np.add(score[:, :, None], params.transitions, out=candidates)
        candidates += emissions[:, t, None, :]
        candidates.argmax(axis=1, out=history[t - 1])  # first index on ties
        np.maximum.reduce(candidates, axis=1, out=best)  # the value at that index
        if ragged:
            np.copyto(score, best, where=active[t - 1][:, None])
        else:
            score, best = best, score
    score = score + params.end
    current = score.argmax(axis=1)
    if ragged:
        history[~active] = np.arange(k)  # a finished row stays on its last tag
    rows = np.arange(batch)
    for t in range(steps - 1, 0, -1):
        tags[:, t] = current
        current = history[t - 1, rows, current]
    tags[:, 0] = current
    if ragged:
        tags[np.arange(steps)[None, :] >= lengths[:, None]] = -1
    return tags


def _logsumexp(x: FloatArray, axis: int) -> FloatArray:
    peak = x.max(axis=axis, keepdims=True)
    total: FloatArray = np.squeeze(peak, axis=axis) + np.log(np.exp(x - peak).sum(axis=axis))
    return total


@dataclass(frozen=True)
class ForwardBackward:
    """Log-space forward (alpha, emission included) and backward (beta, emission excluded)."""

    alpha: FloatArray
    beta: FloatArray
    log_partition: FloatArray

    def marginals(self) -> FloatArray:
        """P(tag at t = k) for every position; rows past a sequence's length are meaningless."""
        return np.exp(self.alpha + self.beta - self.log_partition[:, None, None])


def forward_backward(
    emissions: FloatArray, lengths: IntArray, params: CrfParams
) -> ForwardBackward:
    """Run the forward-backward recursions in log space (finite penalties keep it NaN-free).

    Each step is one log-sum-exp over the previous tag, written out on preallocated buffers
    (max, subtract, exp, sum, log, add: the same floating-point operations as
    :func:`_logsumexp`, without its temporaries); the per-row length mask is built once.
    """
    _check(emissions, lengths, params)
    batch, steps, k = emissions.shape
    alpha = np.empty((batch, steps, k))
    beta = np.empty((batch, steps, k))
    scratch = np.empty((batch, k, k))
    peak = np.empty((batch, k))
    trans = params.transitions
    alpha[:, 0] = params.start + emissions[:, 0]
    for t in range(1, steps):
        np.add(alpha[:, t - 1, :, None], trans, out=scratch)  # [B, from, to]
        _logsumexp_into(scratch, 1, peak, alpha[:, t])
        alpha[:, t] += emissions[:, t]
    beta[:, steps - 1] = params.end
    done = np.arange(steps)[:, None] >= lengths[None, :] - 1  # [T, B]: beta is the end score
    ragged = bool(done[:-1].any())
    following = np.empty((batch, k))
    for t in range(steps - 2, -1, -1):
        np.add(emissions[:, t + 1], beta[:, t + 1], out=following)
        np.add(trans, following[:, None, :], out=scratch)  # [B, from, to]
        _logsumexp_into(scratch, 2, peak, beta[:, t])
        if ragged:
            np.copyto(beta[:, t], params.end, where=done[t][:, None])
    last = alpha[np.arange(batch), lengths - 1]
    log_partition = _logsumexp(last + params.end, axis=1)
    return ForwardBackward(alpha, beta, log_partition)


def _logsumexp_into(x: FloatArray, axis: int, peak: FloatArray, out: FloatArray) -> None:
    """``out = _logsumexp(x, axis)`` for a [B, K, K] ``x``, reusing ``x`` and ``peak``.

    The ufuncs' own reductions (what ``ndarray.max`` / ``sum`` call) and a broadcast view instead
    of ``np.expand_dims``: the same floats without their Python wrappers, which cost more than
    the arithmetic at these sizes (a 20-word text runs ~40 of these per request)."""
    np.maximum.reduce(x, axis=axis, out=peak)
    x -= peak[:, None, :] if axis == 1 else peak[:, :, None]
    np.exp(x, out=x)
    np.add.reduce(x, axis=axis, out=out)
    np.log(out, out=out)
    out += peak  # log-sum + peak: the same sum as peak + log-sum


def segment_probability(
    fb: ForwardBackward,
    emissions: FloatArray,
    params: CrfParams,
    row: int,
    tags: IntArray,
    first: int,
    last: int,
) -> float:
    """P(positions first..last of ``row`` carry exactly ``tags[first:last+1]``) under the CRF.

    This is the entity confidence the service reports: the probability mass of all tag sequences
    that agree with the decoded entity on its words, whatever they say elsewhere.
    """
    segment = tags[first : last + 1]
    inner = params.transitions[segment[:-1], segment[1:]].sum()
    inner += emissions[row, np.arange(first + 1, last + 1), segment[1:]].sum()
    log_p = fb.alpha[row, first, segment[0]] + inner + fb.beta[row, last, segment[-1]]
    return float(np.exp(min(0.0, log_p - fb.log_partition[row])))
