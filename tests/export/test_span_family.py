"""Span models on six encoders, both checkpoint forms, per-type and shared inside heads: export
with parity, and serve entities identical to a PyTorch reference decode on multilingual text, with
exact character offsets, overlapping types and long texts stitched from windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from export.api import options_for
from export.checkpoint import RawCheckpoint, load_checkpoint
from export.cli import main
from export.errors import ExportError
from families.span.decoding import SpanRule
from families.span.export import SpanOptions
from families.span.model import SpanModel, build_span_model
from families.span.parity import reference_spans
from families.span.runtime import SpanRuntime
from families.span.spec import SpanManifest
from service.bundle import read_manifest, verify_bundle
from service.runtime.session import OnnxSession
from service.text.graphemes import Graphemes
from service.text.tokenizer import extend_to_word_end, first_subtokens
from service.text.windows import best_context_window, plan_windows
from tests.families import MULTILINGUAL, source_args
from tests.span_families import SPAN_CASES, TYPES, SpanCase, write_span_model

LONG = " ".join(MULTILINGUAL[:4]) * 3  # several 64-token windows


@pytest.fixture(scope="module", params=SPAN_CASES, ids=[c.id for c in SPAN_CASES])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SpanCase, Path, Path]:
    case: SpanCase = request.param
    root = write_span_model(
        tmp_path_factory.mktemp(case.id), case.model_type, case.attr, case.shared_inside
    )
    out = root / "bundle"
    args = [*source_args(root, case.form), "--out", str(out), "--max-length", "64"]
    assert main(["span", *args, "--stride", "16"]) == 0
    return case, root, out


def test_export_records_the_heads_and_passes_parity(exported: tuple[SpanCase, Path, Path]) -> None:
    case, _, out = exported
    manifest = verify_bundle(out)
    assert isinstance(manifest, SpanManifest)
    assert manifest.labels == TYPES and manifest.schema_version == 4
    assert manifest.span.inside == ("shared" if case.shared_inside else "per-type")
    assert manifest.parity.max_abs_diff <= manifest.parity.atol == 1e-4
    assert manifest.parity.tag_agreement == 1.0 and manifest.parity.cases > 10
    assert sum(int(d["reference_spans"]) for d in manifest.parity.details) > 20


def _reference(
    raw: RawCheckpoint, model: SpanModel, rule: SpanRule, text: str, capacity: int, stride: int
) -> list[tuple[str, int, int]]:
    """HF tokenizer, eager model per window, max-context rows, the torch transcription of the
    rule, and character offsets from the HF offsets."""
    enc = raw.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids()])
    first = first_subtokens(word_ids)
    if not len(first):
        return []
    windows = plan_windows(len(ids), capacity, stride)
    full = raw.tokenizer(text)["input_ids"]
    lead = next(p for p in range(len(full)) if full[p : p + len(ids)] == ids)
    prefix, suffix = full[:lead], full[lead + len(ids) :]
    rows = []
    for w in windows:
        tensor = torch.tensor([prefix + ids[w.start : w.end] + suffix])
        inputs = {"input_ids": tensor, "attention_mask": torch.ones_like(tensor),
                  "token_type_ids": torch.zeros_like(tensor)}  # fmt: skip
        with torch.no_grad():
            probs = model.scores(*(inputs[n] for n in model.input_names))[0].double()
        rows.append(probs[lead : lead + len(w)])
    chosen = best_context_window(windows, len(ids))
    words = torch.stack([rows[chosen[t]][t - windows[chosen[t]].start] for t in first])
    offsets = np.asarray(enc["offset_mapping"])
    found = []
    for t, a, b, _ in reference_spans(words, rule):
        last_tokens = np.flatnonzero(word_ids == word_ids[first[b]])
        limit = int(offsets[first[b + 1], 0]) if b + 1 < len(first) else len(text)
        begin = int(offsets[first[a], 0])
        surface = text[begin : extend_to_word_end(text, int(offsets[last_tokens, 1].max()), limit)]
        if surface.strip():
            start = begin + len(surface) - len(surface.lstrip())
            # served spans are snapped outward to grapheme clusters (service/text/graphemes.py)
            found.append((TYPES[t], *Graphemes.of(text).snap(start, start + len(surface.strip()))))
    return sorted(found, key=lambda f: (f[1], f[2], TYPES.index(f[0])))


def test_served_entities_equal_the_pytorch_reference(
    exported: tuple[SpanCase, Path, Path],
) -> None:
    _, root, out = exported
    manifest = read_manifest(out)
    assert isinstance(manifest, SpanManifest)
    runtime = SpanRuntime(manifest, out, OnnxSession(out / "model.onnx", "span_probs", 1))
    raw = load_checkpoint(root / "dir")
    model = build_span_model(raw)
    texts = [*MULTILINGUAL, LONG]
    served = runtime.predict(texts).entities
    overlapping = entities = 0
    for text, got in zip(texts, served, strict=True):
        expected = _reference(raw, model, runtime.rule, text, runtime.capacity, runtime.stride)
        assert [(e.label, e.start, e.end) for e in got] == expected, text
        assert all(text[e.start : e.end] == e.text and 0 < e.score <= 1 for e in got)
        entities += len(got)
        overlapping += sum(
            a.label != b.label and a.start < b.end and b.start < a.end
            for i, a in enumerate(got)
            for b in got[i + 1 :]
        )
    assert len(runtime.prepare([LONG]).windows[0]) > 2
    assert entities > 10 and overlapping > 0


def test_head_keys_are_found_given_or_refused_by_name(tmp_path: Path) -> None:
    names = ("begin_ptr", "stop_ptr", "inside_ptr")
    root = write_span_model(tmp_path / "m", "bert", names=names)
    base = ["span", *source_args(root, "dir"), "--max-length", "16"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 1  # "begin"/"stop" say no part
    given = ["--start-key", "begin_ptr", "--end-key", "stop_ptr"]
    assert main([*base, "--out", str(tmp_path / "b"), *given]) == 0
    assert read_manifest(tmp_path / "b").span.inside == "per-type"  # type: ignore[union-attr]
    prefixed = write_span_model(tmp_path / "p", "bert", names=("span_start", "span_end", "span"))
    args = ["span", *source_args(prefixed, "dir"), "--max-length", "16", "--out"]
    assert main([*args, str(tmp_path / "c")]) == 0  # "span" is the inside head: the others taken


def test_missing_and_unused_keys_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_span_model(tmp_path / "m", "bert")
    weights = root / "dir" / "model.safetensors"
    state = load_file(str(weights))
    save_file({**state, "aux_head.weight": torch.zeros(2, 32)}, str(weights))
    args = ["span", "--checkpoint", str(root / "dir"), "--max-length", "16"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    assert "aux_head.weight" in capsys.readouterr().err
    save_file({k: v for k, v in state.items() if not k.startswith("end_head")}, str(weights))
    assert main([*args, "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "no end head" in err and "--end-key" in err
    assert main([*args, "--out", str(tmp_path / "c"), "--end-key", "stop"]) == 1
    assert "no stop.weight" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_tag_labels_and_wrong_head_shapes_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_span_model(tmp_path / "m", "bert")
    (root / "tags.txt").write_text("O\nB-PER\nI-PER\n")
    args = ["span", *source_args(root, "pt"), "--out", str(tmp_path / "a")]
    assert main([*args[:-4], "--labels", str(root / "tags.txt"), *args[-2:]]) == 1
    assert "entity types" in capsys.readouterr().err
    (root / "two.txt").write_text("PER\nLOC\n")
    assert main([*args[:-4], "--labels", str(root / "two.txt"), *args[-2:]]) == 1
    assert "start_head.weight has shape (3, 32)" in capsys.readouterr().err


def test_nested_spans_pass_the_gate_and_are_served_as_the_reference(tmp_path: Path) -> None:
    root = write_span_model(tmp_path / "m", "electra", "model")
    out = tmp_path / "nested"
    args = ["span", *source_args(root, "dir"), "--out", str(out), "--max-length", "32"]
    assert main([*args, "--nested", "--threshold", "0.35", "--end-threshold", "0.6"]) == 0
    manifest = read_manifest(out)
    assert isinstance(manifest, SpanManifest) and manifest.span.nested
    assert {(t.start, t.end, t.inside) for t in manifest.span.thresholds} == {(0.35, 0.6, 0.35)}
    runtime = SpanRuntime(manifest, out, OnnxSession(out / "model.onnx", "span_probs", 1))
    raw = load_checkpoint(root / "dir")
    model = build_span_model(raw)
    nested = 0
    for text, got in zip(MULTILINGUAL, runtime.predict(MULTILINGUAL).entities, strict=True):
        expected = _reference(raw, model, runtime.rule, text, runtime.capacity, runtime.stride)
        assert [(e.label, e.start, e.end) for e in got] == expected, text
        nested += sum(
            a.label == b.label and a.start <= b.start and b.end <= a.end
            for i, a in enumerate(got)
            for b in got[i + 1 :]
        )
    assert nested > 0


def test_int8_is_gated_on_span_decisions(tmp_path: Path) -> None:
    root = write_span_model(tmp_path / "m", "bert")
    out = tmp_path / "int8"
    args = ["span", *source_args(root, "dir"), "--out", str(out), "--max-length", "32"]
    assert main([*args, "--quantize", "int8", "--fallback-fp32", "--min-agreement", "0.9"]) == 0
    variant = read_manifest(out).variant
    assert variant is not None and variant.agreement is not None
    assert (variant.agreement >= 0.9) == (variant.quantization == "int8-dynamic")
    assert variant.exact_match is not None and 0 <= variant.exact_match <= 1


def test_cuts_outside_zero_one_are_refused_on_the_command_line_and_in_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["span", "--checkpoint", "c", "--out", str(tmp_path / "o"), "--end-threshold", "2"])
    assert "--end-threshold: invalid probability value: '2'" in capsys.readouterr().err
    with pytest.raises(ExportError, match="threshold"):
        options_for("span", checkpoint="c", out=tmp_path / "o", threshold=-0.1)
    options = options_for("span", checkpoint="c", out=tmp_path / "o", inside_threshold=0.3)
    assert isinstance(options, SpanOptions) and options.threshold == 0.5
