"""Token taggers on six encoders (both checkpoint forms, CRF and softmax heads, BIO and BIOES):
export with parity, and serve entities identical to the PyTorch reference decode on multilingual
text, with exact character offsets for WordPiece, byte-level BPE and Unigram tokenizers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from export.checkpoint import RawCheckpoint, load_checkpoint, save_serving_tokenizer
from export.cli import main
from export.encoders import position_limit
from families.ner.model import Tagger, build_tagger
from families.ner.parity import reference_crf
from families.ner.runtime import NerPipeline
from families.ner.spec import NerManifest
from service.bundle import read_manifest, verify_bundle
from service.runtime.session import OnnxSession
from service.text.graphemes import Graphemes
from service.text.tokenizer import TextTokenizer, extend_to_word_end, first_subtokens, words_of
from tests.families import BIO, CASES, MULTILINGUAL, TOKENIZERS, Case, source_args, write_tagger


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Case, Path, Path]:
    case: Case = request.param
    root = write_tagger(
        tmp_path_factory.mktemp(case.id), case.model_type, case.head, case.labels, case.prefix
    )
    out = root / "bundle"
    args = [
        *source_args(root, case.form),
        "--out",
        str(out),
        "--max-length",
        "64",
        "--stride",
        "16",
    ]
    assert main(["ner", *args, *case.extra]) == 0
    return case, root, out


def test_export_records_the_family_and_passes_parity(exported: tuple[Case, Path, Path]) -> None:
    case, _, out = exported
    manifest = verify_bundle(out)
    assert isinstance(manifest, NerManifest)
    assert manifest.ner.head == case.head
    assert manifest.ner.tag_scheme == ("BIO" if case.labels == BIO else "BIOES")
    assert (manifest.ner.crf is None) == (case.head == "softmax")
    assert manifest.schema_version == 3  # every bundle carries a self-check sample
    plain = case.head == "crf" and case.labels == BIO and not case.extra
    written = json.loads((out / "bundle.json").read_text())["ner"]
    assert {"head", "subtokens", "crf_positions"}.isdisjoint(written) == plain
    assert manifest.parity.max_abs_diff <= manifest.parity.atol == 1e-4
    assert manifest.parity.tag_agreement == 1.0 and manifest.parity.cases > 10
    without_types = case.model_type in ("distilbert", "deberta-v2")
    assert ("token_type_ids" in manifest.onnx.inputs) is not without_types


def _reference(
    pipeline: NerPipeline, raw: RawCheckpoint, tagger: Tagger, text: str
) -> list[tuple[str, int, int]] | None:
    """PyTorch: HF tokenizer, eager model, pytorch-crf decode on the served constrained scores."""
    enc = raw.tokenizer(text, return_offsets_mapping=True)
    if len(enc["input_ids"]) > pipeline.manifest.tokenizer.max_length:
        return None
    ids = torch.tensor([enc["input_ids"]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "token_type_ids": torch.zeros_like(ids)}  # fmt: skip
    with torch.no_grad():
        scores = tagger.scores(*(inputs[n] for n in tagger.input_names))[0].double().numpy()
    word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids()])
    first = first_subtokens(word_ids)
    if len(first) == 0:
        return []
    decoder = pipeline.decoder
    rows = scores[first]
    if decoder.lead:
        rows = np.vstack([decoder.cls_row(scores[0]), rows])
    tags = np.asarray(reference_crf(decoder.crf).decode(torch.from_numpy(rows[None]))[0])
    offsets = np.asarray(enc["offset_mapping"])
    found = []
    for a, b, label in decoder.scheme.spans(tags[decoder.lead :]):
        last_tokens = np.flatnonzero(word_ids == word_ids[first[b]])
        after = first[b + 1] if b + 1 < len(first) else None
        limit = int(offsets[after, 0]) if after is not None else len(text)
        begin = int(offsets[first[a], 0])
        surface = text[begin : extend_to_word_end(text, int(offsets[last_tokens, 1].max()), limit)]
        if surface.strip():  # spans never start or end with whitespace; blank words are no entity
            start = begin + len(surface) - len(surface.lstrip())
            # served spans are snapped outward to grapheme clusters (service/text/graphemes.py)
            found.append((label, *Graphemes.of(text).snap(start, start + len(surface.strip()))))
    return found


def test_served_entities_equal_the_pytorch_reference(exported: tuple[Case, Path, Path]) -> None:
    _, root, out = exported
    manifest = read_manifest(out)
    assert isinstance(manifest, NerManifest)
    pipeline = NerPipeline(manifest, out, OnnxSession(out / "model.onnx", "emissions", 1))
    raw = load_checkpoint(root / "dir")
    tagger = build_tagger(raw, manifest.ner.head)
    assert position_limit(tagger.model) == 64  # RoBERTa/XLM-R: 66 positions, pad id 1
    served = pipeline.predict(MULTILINGUAL).entities
    compared = entities = 0
    for text, got in zip(MULTILINGUAL, served, strict=True):
        expected = _reference(pipeline, raw, tagger, text)
        if expected is None:  # longer than one window: served windowed, not comparable
            continue
        assert [(e.label, e.start, e.end) for e in got] == expected, text
        assert all(text[e.start : e.end] == e.text and 0 <= e.score <= 1 for e in got)
        compared, entities = compared + 1, entities + len(got)
    assert compared >= len(MULTILINGUAL) - 2 and entities > 5


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_word_offsets_are_exact_for_every_tokenizer(kind: str, tmp_path: Path) -> None:
    hf = AutoTokenizer.from_pretrained(str(TOKENIZERS[kind](tmp_path / "tok")))
    save_serving_tokenizer(hf, tmp_path / "tokenizer.json")
    served = TextTokenizer(tmp_path / "tokenizer.json")
    surfaces = set()
    for text, encoded in zip(MULTILINGUAL, served.encode_batch(MULTILINGUAL), strict=True):
        words = words_of(encoded)
        enc = hf(text, add_special_tokens=False)
        hf_words = sorted({w for w in enc.word_ids() if w is not None})
        assert len(words) == len(hf_words)
        for w, hf_word in enumerate(hf_words):
            span = enc.word_to_chars(hf_word)
            expected = text[span.start : span.end].strip()
            got = text[words.char_start[w] : words.char_end[w]].strip()
            assert got == expected, (text, got)
            surfaces.add(got)
    if kind == "unigram":  # NFKC rewrites them in the tokens; offsets still point at the input
        assert {"ﬁle", "ＡＢＣ１２３"} <= surfaces
    if kind == "bpe":
        assert "Врховни" in surfaces


def test_plain_bert_crf_bundles_are_written_without_the_new_keys(tiny_bundle: Path) -> None:
    written = json.loads((tiny_bundle / "bundle.json").read_text())
    assert written["schema_version"] == 3 and "selfcheck" in written  # the sample needs v3
    assert {"head", "subtokens", "crf_positions"}.isdisjoint(written["ner"])
    assert read_manifest(tiny_bundle).ner.head == "crf"  # type: ignore[union-attr]


def test_an_encoder_under_an_unknown_prefix_is_named_and_can_be_given(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint / "dir", source)
    state = load_file(str(source / "model.safetensors"))
    state = {k.replace("bert.", "tagger_encoder.", 1): v for k, v in state.items()}
    save_file(state, str(source / "model.safetensors"))
    args = ["ner", "--checkpoint", str(source), "--out", str(tmp_path / "b"), "--max-length", "16"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "'tagger_encoder': " in err and "--encoder-prefix" in err
    assert main([*args, "--encoder-prefix", "tagger_encoder"]) == 0
