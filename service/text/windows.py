"""Overlapping token windows for texts longer than a model's maximum length.

No text is ever truncated: a long text becomes several windows of at most ``capacity`` content
tokens that overlap by ``stride`` tokens. For per-token outputs (NER), each token takes its scores
from the window where it has the most context on both sides ("max context", as in extractive QA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Window:
    """Content tokens ``[start, end)`` of one text."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def plan_windows(num_tokens: int, capacity: int, stride: int) -> list[Window]:
    """Windows of ``capacity`` tokens overlapping by ``stride``; the last ends with the text."""
    if capacity < 1 or not 0 <= stride < capacity:
        raise ValueError(f"need capacity >= 1 and 0 <= stride < capacity, got {capacity}, {stride}")
    if num_tokens <= capacity:
        return [Window(0, num_tokens)]
    step = capacity - stride
    starts = [*range(0, num_tokens - capacity, step), num_tokens - capacity]
    return [Window(s, s + capacity) for s in starts]


def best_context_window(windows: list[Window], num_tokens: int) -> IntArray:
    """For every token, the index of the window in which it sits farthest from both edges."""
    positions = np.arange(num_tokens)
    starts = np.asarray([w.start for w in windows])[:, None]
    ends = np.asarray([w.end for w in windows])[:, None]
    context = np.minimum(positions - starts, ends - 1 - positions)
    context = np.where((positions >= starts) & (positions < ends), context, -1)
    best: IntArray = context.argmax(axis=0).astype(np.int64)
    return best


def gather_tokens(
    tokens: IntArray, windows: list[Window], window_scores: list[FloatArray], num_tokens: int
) -> FloatArray:
    """Score rows of ``tokens`` (e.g. each word's first sub-token), each taken from the window
    where that token has the most context; ``window_scores[w]`` covers window w's content."""
    chosen = best_context_window(windows, num_tokens)[tokens]
    out = np.empty((len(tokens), window_scores[0].shape[1]))
    for w, window in enumerate(windows):
        picked = chosen == w
        out[picked] = window_scores[w][tokens[picked] - window.start]
    return out
