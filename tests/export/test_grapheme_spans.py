"""A byte-level BPE (RoBERTa) tagger splits Devanagari vowel signs and virama conjuncts into words
of their own; served entities must still start and end on grapheme cluster boundaries."""

from __future__ import annotations

import random

import pytest
import regex

from export.cli import main
from families.ner.runtime import NerPipeline
from families.ner.spec import NerManifest
from service.bundle import read_manifest
from service.runtime.session import OnnxSession
from service.text.graphemes import Graphemes
from service.text.tokenizer import words_of
from tests.families import BIOES, source_args, write_tagger

NAMES = ["राहुल", "प्रिया", "क्षितिज", "Tushar", "inayat", "सौम्या", "ज़ोया", "श्रेया"]
FOODS = ["डोसा", "समोसे", "पनीर टिक्का", "छोले भटूरे", "biryani", "मसाला चाय", "ढोकला"]
GLUE = ["ko", "se", "ne", "bolo", "ki", "kal", "2", "misal", "मुझे", "चाहिए", "और", "में", "दो", "!"]


def hinglish(rng: random.Random) -> str:
    words = [rng.choice(rng.choice([NAMES, FOODS, GLUE, GLUE])) for _ in range(rng.randint(3, 12))]
    return " ".join(words)


def cluster_cuts(text: str) -> set[int]:
    """Independent of the code under test: every offset where ``\\X`` puts a boundary."""
    return {0, *(m.end() for m in regex.finditer(r"\X", text, flags=regex.DOTALL))}


@pytest.fixture(scope="module")
def roberta(tmp_path_factory: pytest.TempPathFactory) -> NerPipeline:
    root = write_tagger(tmp_path_factory.mktemp("roberta"), "roberta", "crf", BIOES, "roberta")
    out = root / "bundle"
    args = [*source_args(root, "pt"), "--out", str(out), "--max-length", "64", "--stride", "16"]
    assert main(["ner", *args]) == 0
    manifest = read_manifest(out)
    assert isinstance(manifest, NerManifest)
    return NerPipeline(manifest, out, OnnxSession(out / "model.onnx", "emissions", 1))


TEXTS = [hinglish(random.Random(seed)) for seed in range(80)]


def _cut_spans(pipeline: NerPipeline) -> tuple[int, int]:
    entities = cut = 0
    for text, found in zip(TEXTS, pipeline.predict(TEXTS).entities, strict=True):
        cuts = cluster_cuts(text)
        for e in found:
            entities += 1
            cut += e.start not in cuts or e.end not in cuts
            assert text[e.start : e.end] == e.text
    return entities, cut


def test_byte_level_words_cut_clusters(roberta: NerPipeline) -> None:
    """The premise: this tokenizer's words do start or end inside clusters on these texts."""
    inside = 0
    for text, encoded in zip(TEXTS, roberta.tokenizer.encode_batch(TEXTS), strict=True):
        words, cuts = words_of(encoded), cluster_cuts(text)
        inside += sum(int(words.char_end[w]) not in cuts for w in range(len(words)))
    assert inside > 50


def test_served_spans_never_cut_a_grapheme_cluster(
    roberta: NerPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    entities, cut = _cut_spans(roberta)
    assert entities > 20 and cut == 0
    monkeypatch.setattr(Graphemes, "snap", lambda self, start, end: (start, end))
    _, unsnapped = _cut_spans(roberta)
    assert unsnapped > 0  # without snapping the same model does return half characters
    print(f"{unsnapped} of {entities} entities cut a cluster without snapping")
