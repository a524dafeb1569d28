"""Review routing (service.review): per document, a person looks at labels of non-automated
classes and at probabilities inside a class's uncertainty band; otherwise nothing is flagged."""

from __future__ import annotations

import pytest

from service.review import automatic_decisions, review, review_rate

LABELS = ["appeal", "dismiss", "summary"]
THRESHOLDS = [0.5, 0.4, 0.6]
AUTOMATE = [True, True, False]
LOW = [0.4, 0.3, 0.6]
HIGH = [0.6, 0.5, 0.6]


def _review(rows: list[list[float]]) -> list:  # type: ignore[type-arg]
    return review(rows, LABELS, THRESHOLDS, AUTOMATE, LOW, HIGH)


def test_confident_decisions_of_automated_classes_need_no_person() -> None:
    (clear,) = _review([[0.95, 0.1, 0.2]])
    assert not clear.review and clear.reasons == []


def test_a_label_of_a_non_automated_class_is_always_reviewed() -> None:
    (doc,) = _review([[0.95, 0.1, 0.99]])
    assert doc.review
    assert [(r.label, r.reason) for r in doc.reasons] == [("summary", "class_not_automated")]
    assert doc.reasons[0].probability == 0.99 and doc.reasons[0].threshold == 0.6


def test_probabilities_inside_the_band_are_reviewed_on_both_sides_of_the_threshold() -> None:
    above, below, edge = _review([[0.55, 0.1, 0.0], [0.45, 0.1, 0.0], [0.6, 0.3, 0.0]])
    assert [(r.label, r.reason) for r in above.reasons] == [("appeal", "near_threshold")]
    assert [(r.label, r.reason) for r in below.reasons] == [("appeal", "near_threshold")]
    # band is [low, high): 0.6 is outside appeal's band, 0.3 inside dismiss's
    assert [(r.label, r.reason) for r in edge.reasons] == [("dismiss", "near_threshold")]


def test_a_non_automated_class_is_reviewed_below_its_threshold_only_inside_its_band() -> None:
    low = [0.4, 0.3, 0.45]  # summary (not automated, t = 0.6): its absences from 0.45 up are unsure
    inside, far, label = review(
        [[0.95, 0.1, 0.5], [0.95, 0.1, 0.2], [0.95, 0.1, 0.7]],
        LABELS,
        THRESHOLDS,
        AUTOMATE,
        low,
        HIGH,
    )
    assert [(r.label, r.reason) for r in inside.reasons] == [("summary", "near_threshold")]
    assert not far.review  # far below the threshold: an absence issued without a person
    # at or above the threshold the label itself is reviewed, once, as not automated
    assert [(r.label, r.reason) for r in label.reasons] == [("summary", "class_not_automated")]


def test_automatic_decisions_score_what_no_person_looked_at() -> None:
    rows = [[0.95, 0.1, 0.2], [0.5, 0.1, 0.2], [0.1, 0.1, 0.9], [0.9, 0.0, 0.0]]
    truth = [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    outcome = automatic_decisions(rows, truth, THRESHOLDS, AUTOMATE, LOW, HIGH)
    assert outcome.review_rate == 0.5  # documents 2 and 3
    # issued: appeal on documents 1 and 4 (one right); absences: 4, one of them a positive
    assert outcome.precision == 0.5 and outcome.miss_rate == 0.25


def test_review_rate_and_shape_errors() -> None:
    reviews = _review([[0.95, 0.1, 0.2], [0.5, 0.1, 0.2], [0.1, 0.1, 0.9], [0.0, 0.0, 0.0]])
    assert [r.review for r in reviews] == [False, True, True, False]
    assert review_rate(reviews) == 0.5
    with pytest.raises(ValueError, match="3 values per class"):
        review([[0.1, 0.2]], LABELS, THRESHOLDS, AUTOMATE, LOW, HIGH)
