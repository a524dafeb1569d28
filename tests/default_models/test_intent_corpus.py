"""Tests for the synthetic food-ordering intent corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from default_models import intent_corpus
from default_models.food_corpus import split_pools
from default_models.intent_corpus import (
    EXTRA_TEMPLATES,
    INTENTS,
    OUT_OF_SCOPE,
    TEMPLATES,
    Utterance,
    generate_splits,
    read_jsonl,
    split_templates,
    write_jsonl,
)

SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Utterance]]:
    return generate_splits()


def test_templates_are_unique_across_intents() -> None:
    every = [t for ts in (*TEMPLATES.values(), *EXTRA_TEMPLATES.values()) for t in ts]
    every += OUT_OF_SCOPE
    assert len(every) == len(set(every))
    assert len(INTENTS) == 8
    assert set(EXTRA_TEMPLATES) == {*INTENTS, "oos"}


def test_every_intent_has_varied_training_phrasings() -> None:
    """Train sees at least 30 phrasings per intent (a dozen was too few to generalise from)."""
    train = split_templates()["train"]
    for intent in (*INTENTS, "oos"):
        least = 30 if intent in ("greet", "thanks", "oos") else 50
        assert len(train[intent]) >= least, (intent, len(train[intent]))


def test_held_out_templates_are_disjoint_and_cover_every_intent() -> None:
    parts = split_templates()
    for intent in (*INTENTS, "oos"):
        train, dev, test = (set(parts[s][intent]) for s in SPLITS)
        assert train and dev and len(test) >= 2, intent
        assert not train & dev and not train & test and not dev & test, intent
        source = OUT_OF_SCOPE if intent == "oos" else TEMPLATES[intent]
        assert train | dev | test == set(source) | set(EXTRA_TEMPLATES[intent])
        # the extra phrasings train only: dev and test are held out of the original templates
        assert not set(EXTRA_TEMPLATES[intent]) & (dev | test)


def test_every_utterance_comes_from_its_own_splits_templates(
    splits: dict[str, list[Utterance]],
) -> None:
    parts = split_templates()
    train = {t for ts in parts["train"].values() for t in ts}
    for name in SPLITS:
        for u in splits[name]:
            assert u.template in parts[name][u.intent or "oos"], (name, u)
            if name != "train":
                assert u.template not in train
    # Dev/test texts never equal a training text either (e.g. a slot-free template).
    assert not {u.text.lower() for u in splits["test"]} & {u.text.lower() for u in splits["train"]}


def test_test_uses_the_ner_test_values_only(splits: dict[str, list[Utterance]]) -> None:
    pools = split_pools()
    train_only = {v for vs in pools["train"].values.values() for v in vs} - {
        v for vs in pools["test"].values.values() for v in vs
    }
    long_values = {v for v in train_only if len(v) > 12}
    texts = " ".join(u.text.lower() for u in splits["test"])
    assert not [v for v in long_values if v in texts]


def test_label_balance(splits: dict[str, list[Utterance]]) -> None:
    train = Counter(u.intent for u in splits["train"])
    assert train == Counter({**dict.fromkeys(INTENTS, 300), None: 300})
    for name in ("dev", "test"):
        counts = Counter(u.intent for u in splits[name])
        assert set(counts) == {*INTENTS, None}
        assert min(counts.values()) >= 10, (name, counts)
        assert len({u.text for u in splits[name]}) == len(splits[name])  # no repeats


def test_deterministic_and_seeded(
    splits: dict[str, list[Utterance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert generate_splits(seed=13) == splits
    assert generate_splits(seed=14) != splits
    assert generate_splits(per_intent={"train": 5})["test"] == splits["test"]
    # Training material never moves the held-out benchmarks.
    monkeypatch.setattr(intent_corpus, "EXTRA_TEMPLATES", {})
    without = generate_splits()
    assert without["dev"] == splits["dev"] and without["test"] == splits["test"]
    assert without["train"] != splits["train"]


def test_closed_set_has_no_out_of_scope() -> None:
    closed = generate_splits(per_intent={"train": 20, "dev": 5, "test": 5}, oos=False)
    assert all(u.intent in INTENTS for s in closed.values() for u in s)


def test_jsonl_round_trip(tmp_path: Path, splits: dict[str, list[Utterance]]) -> None:
    path = tmp_path / "test.jsonl"
    write_jsonl(splits["test"], path)
    back = read_jsonl(path)
    assert [(u.text, u.intent) for u in back] == [(u.text, u.intent) for u in splits["test"]]
    assert any(u.intent is None for u in back)
