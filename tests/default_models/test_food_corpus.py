"""Tests for the synthetic food-ordering NER corpus."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from default_models.food_corpus import (
    LABELS,
    TEMPLATES,
    VALUES,
    Example,
    Span,
    generate_splits,
    read_jsonl,
    split_pools,
    template_labels,
    write_jsonl,
)

SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Example]]:
    return generate_splits()


def _values(examples: list[Example]) -> set[str]:
    return {ex.text[s.start : s.end].lower() for ex in examples for s in ex.spans}


def test_sizes(splits: dict[str, list[Example]]) -> None:
    assert {name: len(exs) for name, exs in splits.items()} == {
        "train": 2400,
        "dev": 300,
        "test": 600,
    }


def test_same_seed_same_output_other_seed_differs(splits: dict[str, list[Example]]) -> None:
    assert generate_splits(seed=13) == splits
    assert generate_splits(seed=14) != splits
    assert split_pools(13) == split_pools(13)
    assert split_pools(13) != split_pools(14)


def test_dev_and_test_do_not_depend_on_train_size(splits: dict[str, list[Example]]) -> None:
    small = generate_splits(n_train=10)
    assert small["dev"] == splits["dev"]
    assert small["test"] == splits["test"]


def test_spans_are_exact_sorted_stripped_and_labelled(splits: dict[str, list[Example]]) -> None:
    known = {v.lower() for label in LABELS for v in VALUES[label]}
    edge_punct = set(string.punctuation) - {"'"}
    for examples in splits.values():
        for ex in examples:
            prev_end = 0
            for span in ex.spans:
                assert span.label in LABELS
                assert prev_end <= span.start < span.end <= len(ex.text)
                value = ex.text[span.start : span.end]
                assert value == value.strip()
                assert value[0] not in edge_punct and value[-1] not in edge_punct
                assert value.lower() in known, (ex.text, value)
                prev_end = span.end


def test_every_label_and_zero_entity_utterances_in_every_split(
    splits: dict[str, list[Example]],
) -> None:
    for name in SPLITS:
        found = {s.label for ex in splits[name] for s in ex.spans}
        assert found == set(LABELS), name
        assert any(not ex.spans for ex in splits[name]), name
        assert max(len(ex.spans) for ex in splits[name]) <= 4


def test_surface_variation_present(splits: dict[str, list[Example]]) -> None:
    texts = [ex.text for ex in splits["train"]]
    assert any(t.isupper() for t in texts)
    assert any(t[0].isupper() and not t.isupper() for t in texts)
    assert any("  " in t for t in texts)
    assert any(t.endswith(", please") for t in texts)
    assert any(t.endswith("?") for t in texts)
    assert any(ex.text[s.end : s.end + 1] == "," for ex in splits["train"] for s in ex.spans)
    assert any(not t.isascii() for t in texts)


def test_test_values_disjoint_from_train_and_dev(splits: dict[str, list[Example]]) -> None:
    seen = _values(splits["train"]) | _values(splits["dev"])
    assert not _values(splits["test"]) & seen


def test_pools_are_disjoint_and_cover_the_source_lists() -> None:
    pools = split_pools()
    train, dev, test = pools["train"], pools["dev"], pools["test"]
    assert dev == train
    assert not set(train.templates) & set(test.templates)
    assert set(train.templates) | set(test.templates) == set(TEMPLATES)
    for label in LABELS:
        assert not set(train.values[label]) & set(test.values[label])
        assert set(train.values[label]) | set(test.values[label]) == set(VALUES[label])
        assert len(test.values[label]) >= 5
    for part in (train, test):
        assert {lab for t in part.templates for lab in template_labels(t)} == set(LABELS)


def test_source_data_is_varied_and_unambiguous() -> None:
    assert len(TEMPLATES) >= 40
    assert len(set(TEMPLATES)) == len(TEMPLATES)
    all_values = [v for label in LABELS for v in VALUES[label]]
    assert len({v.lower() for v in all_values}) == len(all_values)  # no value in two labels
    for label in LABELS:
        assert len(VALUES[label]) >= 30, label
        assert all(v == v.strip().lower() for v in VALUES[label]), label
        assert any(" " in v for v in VALUES[label]), label
    for template in TEMPLATES:
        assert set(template_labels(template)) <= set(LABELS), template


def test_jsonl_round_trip(tmp_path: Path, splits: dict[str, list[Example]]) -> None:
    handmade = Example(
        "haldiram's café se 2 misal",
        (Span(0, 15, "STORE"), Span(19, 20, "QTY"), Span(21, 26, "FOOD")),
    )
    assert [handmade.text[s.start : s.end] for s in handmade.spans] == [
        "haldiram's café",
        "2",
        "misal",
    ]
    examples = [*splits["test"][:50], handmade]
    path = tmp_path / "test.jsonl"
    write_jsonl(examples, path)
    assert read_jsonl(path) == examples
    raw = path.read_text(encoding="utf-8")
    assert "café" in raw  # written as UTF-8, not \\u escapes
    assert len(raw.splitlines()) == len(examples)
