"""Windows, word grouping and character offsets for any script, whitespace and sub-word split."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from default_models.ner_training import encoder_dir
from families.ner.runtime import NerPipeline
from service.bundle import read_manifest
from service.text.windows import best_context_window, plan_windows
from tests.helpers import TableSession


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 400), capacity=st.integers(1, 64), data=st.data())
def test_windows_cover_every_token_within_capacity(
    n: int, capacity: int, data: st.DataObject
) -> None:
    stride = data.draw(st.integers(0, capacity - 1))
    windows = plan_windows(n, capacity, stride)
    covered = np.zeros(n, dtype=bool)
    for w in windows:
        assert 0 <= w.start < max(w.end, 1) and len(w) <= capacity
        covered[w.start : w.end] = True
    assert covered.all()
    assert windows[-1].end == n
    for a, b in itertools.pairwise(windows):
        assert b.start - a.start <= capacity - stride and a.end - b.start >= stride
    if n:
        chosen = best_context_window(windows, n)
        for position, w in enumerate(chosen):
            assert windows[w].start <= position < windows[w].end


def test_best_context_prefers_the_window_where_the_token_is_central() -> None:
    windows = plan_windows(20, 10, 6)  # starts 0, 4, 8, 10
    chosen = best_context_window(windows, 20)
    assert chosen[0] == 0 and chosen[19] == len(windows) - 1
    assert chosen[9] == 1  # 5 tokens of context in window [4, 14) vs 1 in [0, 10)


@pytest.fixture(scope="module")
def every_word_is_food(tiny_bundle: Path):
    """A pipeline over a fake model that tags every word B-FOOD (so every word is an entity)."""
    manifest = read_manifest(tiny_bundle)
    table = np.zeros((30522, len(manifest.labels)), dtype=np.float32)
    table[:, manifest.labels.index("B-FOOD")] = 50.0
    crf = manifest.ner.crf.model_copy(
        update={
            "start": [0.0] * len(manifest.labels),
            "end": [0.0] * len(manifest.labels),
            "transitions": [[0.0] * len(manifest.labels)] * len(manifest.labels),
        }
    )
    manifest = manifest.model_copy(update={"ner": manifest.ner.model_copy(update={"crf": crf})})
    return NerPipeline(manifest, tiny_bundle, TableSession(table))


WORDS = st.sampled_from(
    [
        "café",
        "naïve",
        "crème",
        "Ñandú",
        "e\u0301cole",
        "Добрый",
        "день",
        "Београд",
        "नमस्ते",
        "मुंबई",
        "हिन्दी",
        "Việt",
        "Nguyễn",
        "bánh",
        "😀",
        "ab😀cd",
        "tushar",
        "misal",
        "x",
        "Ω",
        "straße",
        "supercalifragilisticexpialidocious",
        "ÆØÅ",
        "ĳssel",
        "ǅemal",
    ]
)
SPACES = st.sampled_from([" ", "  ", "\t", "\n", " \u00a0", "\u3000", "\u2003", " \r\n "])


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(WORDS, min_size=1, max_size=40), gaps=st.lists(SPACES, min_size=41, max_size=41)
)
def test_each_word_maps_back_to_its_exact_characters(every_word_is_food, words, gaps) -> None:
    text = gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:], strict=False))
    entities = every_word_is_food.predict([text]).entities[0]
    assert [e.text for e in entities] == words
    for e in entities:
        assert text[e.start : e.end] == e.text


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_offsets_are_exact_for_arbitrary_unicode(every_word_is_food, text: str) -> None:
    entities = every_word_is_food.predict([text]).entities[0]
    previous_end = 0
    for e in entities:
        assert 0 <= previous_end <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == e.text
        assert e.text == e.text.strip() or not e.text.strip()
        previous_end = e.end


def test_long_text_windows_stitch_without_loss_or_duplication(tiny_bundle: Path) -> None:
    """A context-free fake model must give identical entities with and without windowing."""
    manifest = read_manifest(tiny_bundle)
    rng = np.random.default_rng(3)
    table = rng.normal(0, 3, size=(30522, len(manifest.labels))).astype(np.float32)
    windowed = NerPipeline(manifest, tiny_bundle, TableSession(table))
    assert windowed.capacity == 14
    whole_manifest = manifest.model_copy(
        update={
            "tokenizer": manifest.tokenizer.model_copy(update={"max_length": 4096, "stride": 8})
        }
    )
    whole = NerPipeline(whole_manifest, tiny_bundle, TableSession(table))
    vocab = [
        w for w in (encoder_dir() / "vocab.txt").read_text().split("\n")[2000:2400] if w.isalpha()
    ]
    text = " ".join(rng.choice(vocab, size=300))
    got, expected = windowed.predict([text]), whole.predict([text])
    assert got.windows > 20 and expected.windows == 1
    assert got.entities == expected.entities
    assert len(got.entities[0]) > 20
