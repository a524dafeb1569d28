"""The CRF decoder as it was before it was tuned (commit d2db7af): the oracle for
``test_crf_fast.py``. Plain per-step numpy, one temporary per operation; do not optimise."""

from __future__ import annotations

import numpy as np

from families.ner.crf import CrfParams


def viterbi_decode(emissions: np.ndarray, lengths: np.ndarray, params: CrfParams) -> np.ndarray:
    batch, steps, _ = emissions.shape
    tags = np.full((batch, steps), -1, dtype=np.int64)
    if batch == 0:
        return tags
    score = params.start + emissions[:, 0]
    history = np.empty((max(steps - 1, 0), batch, params.num_tags), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, :, None] + params.transitions + emissions[:, t, None, :]
        history[t - 1] = candidates.argmax(axis=1)
        best = np.take_along_axis(candidates, history[t - 1][:, None, :], axis=1)[:, 0]
        score = np.where((t < lengths)[:, None], best, score)
    score = score + params.end
    current = score.argmax(axis=1)
    rows = np.arange(batch)
    for t in range(steps - 1, 0, -1):
        active = t < lengths
        tags[:, t] = np.where(active, current, -1)
        current = np.where(active, history[t - 1][rows, current], current)
    tags[:, 0] = current
    return tags


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    peak = x.max(axis=axis, keepdims=True)
    return np.squeeze(peak, axis=axis) + np.log(np.exp(x - peak).sum(axis=axis))


def forward_backward(
    emissions: np.ndarray, lengths: np.ndarray, params: CrfParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, log_partition) exactly as the service computed them before."""
    batch, steps, k = emissions.shape
    alpha = np.empty((batch, steps, k))
    beta = np.empty((batch, steps, k))
    alpha[:, 0] = params.start + emissions[:, 0]
    for t in range(1, steps):
        alpha[:, t] = _logsumexp(alpha[:, t - 1, :, None] + params.transitions, axis=1)
        alpha[:, t] += emissions[:, t]
    beta[:, steps - 1] = params.end
    for t in range(steps - 2, -1, -1):
        following = emissions[:, t + 1] + beta[:, t + 1]
        inner = _logsumexp(params.transitions + following[:, None, :], axis=2)
        beta[:, t] = np.where((t < lengths - 1)[:, None], inner, params.end)
    last = alpha[np.arange(batch), lengths - 1]
    return alpha, beta, _logsumexp(last + params.end, axis=1)
