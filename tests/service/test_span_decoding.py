"""The span decoding rule on hand-written probability matrices (families.span.decoding)."""

from __future__ import annotations

import numpy as np
import pytest

from families.span.decoding import (
    Span,
    SpanRule,
    decode_spans,
    pair_spans,
    span_scores,
    split_parts,
)
from families.span.spec import SpanSpec, SpanThresholds

HALF = (0.5, 0.5, 0.5)


def columns(*parts: list[list[float]]) -> np.ndarray:
    """start, end, inside given as [types][words] → the graph's [words, 3 * types] layout."""
    return np.concatenate([np.asarray(p, dtype=np.float64).T for p in parts], axis=1)


def test_each_start_takes_the_nearest_end_inside_its_run() -> None:
    start = np.array([0.9, 0.1, 0.1, 0.8, 0.1, 0.1])
    end = np.array([0.1, 0.7, 0.9, 0.1, 0.1, 0.9])
    inside = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    # word 0 closes at 1 (nearest), not 2; word 3 runs to 5
    assert pair_spans(start, end, inside, HALF) == [(0, 1), (3, 5)]


def test_a_word_below_the_inside_cut_ends_the_search() -> None:
    start = np.array([0.9, 0.1, 0.1, 0.1])
    end = np.array([0.1, 0.1, 0.1, 0.9])
    inside = np.array([0.9, 0.9, 0.2, 0.9])
    assert pair_spans(start, end, inside, HALF) == []  # the only end lies past word 2
    assert pair_spans(start, end, inside, (0.5, 0.5, 0.1)) == [(0, 3)]


def test_a_one_word_span_needs_its_start_end_and_inside() -> None:
    start, end = np.array([0.6]), np.array([0.6])
    assert pair_spans(start, end, np.array([0.6]), HALF) == [(0, 0)]
    assert pair_spans(start, end, np.array([0.4]), HALF) == []
    assert pair_spans(start, end, np.array([0.6]), (0.7, 0.5, 0.5)) == []
    assert pair_spans(start, end, np.array([0.6]), (0.5, 0.7, 0.5)) == []


def test_starts_inside_a_span_nest_only_by_option() -> None:
    start = np.array([0.9, 0.1, 0.8, 0.1])
    end = np.array([0.1, 0.1, 0.1, 0.9])
    inside = np.full(4, 0.9)
    assert pair_spans(start, end, inside, HALF) == [(0, 3)]
    assert pair_spans(start, end, inside, HALF, nested=True) == [(0, 3), (2, 3)]


def test_cuts_are_inclusive() -> None:
    p = np.array([0.5])
    assert pair_spans(p, p, p, HALF) == [(0, 0)]
    assert pair_spans(p, p, np.nextafter(p, 0), HALF) == []


def test_score_is_the_geometric_mean_of_start_end_and_mean_inside() -> None:
    start = np.array([0.8, 0.1, 0.1])
    end = np.array([0.1, 0.1, 0.5])
    inside = np.array([0.9, 0.6, 0.6])
    (score,) = span_scores(start, end, inside, [(0, 2)])
    assert score == pytest.approx((0.8 * 0.5 * 0.7) ** (1 / 3))


def test_types_overlap_and_spans_come_in_text_order() -> None:
    probs = columns(
        [[0.1, 0.9, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1]],  # start: PER at 1, LOC at 0
        [[0.1, 0.1, 0.9, 0.1], [0.1, 0.1, 0.1, 0.9]],  # end: PER at 2, LOC at 3
        [[0.1, 0.9, 0.9, 0.1], [0.9, 0.9, 0.9, 0.9]],  # inside
    )
    spans = decode_spans(probs, SpanRule.uniform(2, 0.5))
    assert [(s.label, s.first, s.last) for s in spans] == [(1, 0, 3), (0, 1, 2)]
    assert all(0 < s.score <= 1 for s in spans)


def test_per_type_cuts_come_from_the_manifest() -> None:
    spec = SpanSpec(
        inside="shared",
        thresholds=[
            SpanThresholds(start=0.95, end=0.5, inside=0.5),
            SpanThresholds(start=0.5, end=0.5, inside=0.5),
        ],
    )
    probs = columns([[0.9], [0.9]], [[0.9], [0.9]], [[0.9], [0.9]])
    assert decode_spans(probs, SpanRule.from_spec(spec)) == [
        Span(1, 0, 0, pytest.approx(0.9))  # type: ignore[arg-type]
    ]


def test_the_column_layout_is_checked() -> None:
    with pytest.raises(ValueError, match=r"\[words, 6\]"):
        split_parts(np.zeros((3, 5)), 2)
    start, end, inside = split_parts(np.arange(12.0).reshape(2, 6), 2)
    assert start.tolist() == [[0, 1], [6, 7]] and inside.tolist() == [[4, 5], [10, 11]]
    assert end.tolist() == [[2, 3], [8, 9]]


def test_no_words_no_spans() -> None:
    assert decode_spans(np.zeros((0, 3)), SpanRule.uniform(1, 0.5)) == []
