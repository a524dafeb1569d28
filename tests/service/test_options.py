"""Entity filters, pre-split words and the truncation policy on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from families.ner.options import EntityFilter, OptionError, entity_types, join_words
from service.text.tokenizer import EncodedText, first_whole_words
from service.text.truncation import NeedsWindows, apply_policy

TAGS = ["O", "B-FOOD", "I-FOOD", "B-PER", "I-PER", "B-LOC", "I-LOC"]
FOUND = [("FOOD", 0.95), ("PER", 0.40), ("LOC", 0.70), ("FOOD", 0.30)]


def kept(f: EntityFilter) -> list[tuple[str, float]]:
    return [(label, score) for label, score in FOUND if f.keep(label, score)]


def test_entity_types_in_tag_order() -> None:
    assert entity_types(TAGS) == ["FOOD", "PER", "LOC"]


def test_labels_allow_list_and_global_min_score() -> None:
    types = entity_types(TAGS)
    assert kept(EntityFilter.build(None, None, types)) == FOUND
    assert kept(EntityFilter.build(["FOOD"], None, types)) == [("FOOD", 0.95), ("FOOD", 0.30)]
    assert kept(EntityFilter.build(None, 0.5, types)) == [("FOOD", 0.95), ("LOC", 0.70)]
    assert kept(EntityFilter.build(["PER", "LOC"], 0.5, types)) == [("LOC", 0.70)]
    assert kept(EntityFilter.build(None, 0.95, types)) == [("FOOD", 0.95)]  # >= keeps equality


def test_per_label_min_score_leaves_other_labels_unfiltered() -> None:
    f = EntityFilter.build(None, {"FOOD": 0.5, "LOC": 0.8}, entity_types(TAGS))
    assert kept(f) == [("FOOD", 0.95), ("PER", 0.40)]


@pytest.mark.parametrize(
    ("labels", "min_score", "field"),
    [(["FOOD", "ORG"], None, "labels"), (None, {"food": 0.5}, "min_score")],
)
def test_unknown_types_are_refused_naming_the_field(
    labels: list[str] | None, min_score: dict[str, float] | None, field: str
) -> None:
    with pytest.raises(OptionError, match="does not have") as caught:
        EntityFilter.build(labels, min_score, entity_types(TAGS))
    assert caught.value.field == field


def test_words_are_joined_with_single_spaces_and_spans_map_back() -> None:
    joined = join_words(["Tushar", "se", "2", "misal", "pav"])
    assert joined.text == "Tushar se 2 misal pav"
    assert joined.word_range(0, 6) == (0, 1)
    assert joined.word_range(12, 21) == (3, 5)  # "misal pav"
    assert joined.word_range(13, 15) == (3, 4)  # inside one word
    assert join_words([]).text == ""


@pytest.mark.parametrize("bad", ["", "two words", "tab\there"])
def test_ambiguous_words_are_refused(bad: str) -> None:
    with pytest.raises(OptionError, match=r"words\[1\]"):
        join_words(["ok", bad])


def test_truncation_policies() -> None:
    windows = ["w0", "w1", "w2"]
    assert apply_policy("window", windows, 300, 126, "text") == (windows, False)
    assert apply_policy("truncate", windows, 300, 126, "text") == (["w0"], True)
    assert apply_policy("error", ["w0"], 100, 126, "text") == (["w0"], False)
    assert apply_policy("truncate", ["w0"], 100, 126, "text") == (["w0"], False)
    with pytest.raises(NeedsWindows, match="texts\\[2\\] holds 300 tokens, more than one window"):
        apply_policy("error", windows, 300, 126, "texts[2]")


def _encoded(word_ids: list[int]) -> EncodedText:
    n = len(word_ids)
    offsets = np.stack([np.arange(n), np.arange(n) + 1], axis=1)
    return EncodedText(np.arange(n), offsets, np.asarray(word_ids))


@pytest.mark.parametrize(
    ("word_ids", "limit", "kept"),
    [
        ([0, 0, 1, 1, 1, 2], 3, 2),  # the window cuts word 1: it is left out
        ([0, 0, 1, 1, 1, 2], 2, 2),  # the window ends on a word boundary
        ([0, 0, 1, 1, 1, 2], 6, 6),  # the whole text fits
        ([0, 0, 0, 0], 2, 2),  # one word longer than the window: its start is kept
    ],
)
def test_truncate_keeps_whole_words(word_ids: list[int], limit: int, kept: int) -> None:
    assert len(first_whole_words(_encoded(word_ids), limit)) == kept
