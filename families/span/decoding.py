"""Spans from per-word start / end / inside probabilities, by thresholds (pure numpy).

The rule, per entity type ``t`` with cuts ``start_t``, ``end_t``, ``inside_t``:

1. word ``i`` may open a span if ``start[i] >= start_t``; word ``j`` may close one if
   ``end[j] >= end_t``; a span ``i..j`` (``i <= j``) is admissible if every word ``k`` in
   ``i..j`` (both ends included) has ``inside[k] >= inside_t``;
2. each opening word ``i`` is paired with the **nearest admissible end**: the smallest ``j >= i``
   that may close a span such that ``i..j`` is admissible (the search stops at the first word
   below the inside cut); an opening word with none opens nothing;
3. openings are taken left to right; unless ``nested``, an opening word that lies inside a span of
   the same type already accepted is skipped, so spans of one type never overlap. With
   ``nested``, it opens a span of its own (which then ends at or before the enclosing one's end).

Spans of different types are decided independently and may overlap. A span's score is the
geometric mean of its start probability, its end probability and the mean inside probability of
its words: ``(start[i] * end[j] * mean(inside[i..j])) ** (1/3)``, in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from families.span.spec import SpanSpec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Span:
    """Words ``first..last`` (inclusive) of type ``label`` (an index into the labels)."""

    label: int
    first: int
    last: int
    score: float


@dataclass(frozen=True)
class SpanRule:
    """Per-type cuts (arrays of one value per type) and whether spans of a type may nest."""

    start: FloatArray
    end: FloatArray
    inside: FloatArray
    nested: bool = False

    @classmethod
    def from_spec(cls, spec: SpanSpec) -> SpanRule:
        cuts = spec.thresholds
        return cls(
            np.asarray([c.start for c in cuts], dtype=np.float64),
            np.asarray([c.end for c in cuts], dtype=np.float64),
            np.asarray([c.inside for c in cuts], dtype=np.float64),
            spec.nested,
        )

    @classmethod
    def uniform(cls, types: int, threshold: float, nested: bool = False) -> SpanRule:
        """The same cut for every type and part."""
        cut = np.full(types, threshold, dtype=np.float64)
        return cls(cut, cut.copy(), cut.copy(), nested)

    @property
    def types(self) -> int:
        return len(self.start)


def split_parts(probs: FloatArray, types: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``[words, 3 * types]`` (the graph's columns) → start, end, inside ``[words, types]``."""
    if probs.ndim != 2 or probs.shape[1] != 3 * types:
        raise ValueError(f"expected [words, {3 * types}] probabilities, got {probs.shape}")
    return probs[:, :types], probs[:, types : 2 * types], probs[:, 2 * types :]


def _next_true(flags: NDArray[np.bool_]) -> IntArray:
    """For every position, the first position at or after it where ``flags`` holds (len if none)."""
    n = len(flags)
    where = np.where(flags, np.arange(n), n)
    out: IntArray = np.minimum.accumulate(where[::-1])[::-1].astype(np.int64)
    return out


def pair_spans(
    start: FloatArray,
    end: FloatArray,
    inside: FloatArray,
    cuts: tuple[float, float, float],
    nested: bool = False,
) -> list[tuple[int, int]]:
    """``(first, last)`` word pairs of one type (1-D probabilities), by the module's rule."""
    opens = np.flatnonzero(start >= cuts[0])
    if opens.size == 0:
        return []
    close_at = _next_true(end >= cuts[1])
    outside_at = _next_true(inside < cuts[2])
    pairs, covered = [], -1
    for i in opens.tolist():
        j = int(close_at[i])
        if j >= outside_at[i]:  # no closing word before the inside run breaks (or the text ends)
            continue
        if not nested and i <= covered:
            continue
        pairs.append((i, j))
        covered = max(covered, j)
    return pairs


def span_scores(
    start: FloatArray, end: FloatArray, inside: FloatArray, pairs: list[tuple[int, int]]
) -> FloatArray:
    """Geometric mean of start, end and mean inside probability, for every pair of one type."""
    if not pairs:
        return np.zeros(0)
    first, last = np.asarray(pairs, dtype=np.int64).T
    cumulative = np.concatenate([[0.0], np.cumsum(inside)])
    mean_inside = (cumulative[last + 1] - cumulative[first]) / (last - first + 1)
    product = np.clip(start[first] * end[last] * mean_inside, 0.0, 1.0)
    scores: FloatArray = np.cbrt(product)
    return scores


def decode_spans(probs: FloatArray, rule: SpanRule) -> list[Span]:
    """Every type's spans in one text, ordered by first word, last word, then type."""
    start, end, inside = split_parts(probs, rule.types)
    found = []
    for t in range(rule.types):
        cuts = (float(rule.start[t]), float(rule.end[t]), float(rule.inside[t]))
        pairs = pair_spans(start[:, t], end[:, t], inside[:, t], cuts, rule.nested)
        scores = span_scores(start[:, t], end[:, t], inside[:, t], pairs)
        found += [Span(t, i, j, float(s)) for (i, j), s in zip(pairs, scores, strict=True)]
    return sorted(found, key=lambda s: (s.first, s.last, s.label))
