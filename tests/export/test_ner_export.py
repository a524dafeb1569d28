"""`python -m export ner`: both checkpoint forms, the parity gate, clear errors, atomic output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from default_models.random_checkpoint import LABELS
from export.checkpoint import load_checkpoint
from export.cli import main
from families.ner.model import build_tagger
from families.ner.runtime import NerPipeline
from service.bundle import BundleError, read_manifest, verify_bundle
from service.runtime.session import OnnxSession


def _export(args: list[str]) -> int:
    return main(["ner", *args])


def test_directory_form_bundle_passes_the_gate_and_describes_itself(tiny_bundle: Path) -> None:
    manifest = verify_bundle(tiny_bundle)
    assert manifest.task == "ner" and manifest.labels == LABELS
    assert manifest.parity.max_abs_diff <= manifest.parity.atol == 1e-4
    assert manifest.parity.tag_agreement == 1.0 and manifest.parity.cases > 10
    assert manifest.tokenizer.max_length == 16 and manifest.tokenizer.stride == 4
    assert manifest.ner.constrain_transitions is True
    assert {"torch", "transformers", "onnxruntime", "pytorch-crf"} <= set(manifest.export.versions)
    assert sorted(p.name for p in tiny_bundle.iterdir()) == [
        "bundle.json",
        "model.onnx",
        "tokenizer.json",
    ]
    tokenizer = json.loads((tiny_bundle / "tokenizer.json").read_text())
    assert tokenizer["truncation"] is None and tokenizer["padding"] is None


def test_training_checkpoint_form_exports_the_same_model(
    tiny_checkpoint: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "from-pt"
    code = _export(
        [
            "--checkpoint",
            str(tiny_checkpoint / "model.pt"),
            "--base",
            str(tiny_checkpoint / "base"),
            "--labels",
            str(tiny_checkpoint / "labels.txt"),
            "--out",
            str(out),
            "--max-length",
            "16",
            "--stride",
            "4",
            "--no-bio-constraints",
        ]
    )
    assert code == 0
    manifest, reference = read_manifest(out), read_manifest(tiny_bundle)
    assert manifest.ner.crf == reference.ner.crf and manifest.labels == reference.labels
    assert manifest.ner.constrain_transitions is False


def test_served_tags_equal_pytorch_crf_on_pytorch_emissions(
    tiny_checkpoint: Path, tiny_bundle: Path
) -> None:
    """The bundle, served by the service's pipeline (constraints off), decodes like pytorch-crf."""
    manifest = read_manifest(tiny_bundle)
    manifest = manifest.model_copy(
        update={"ner": manifest.ner.model_copy(update={"constrain_transitions": False})}
    )
    pipeline = NerPipeline(
        manifest, tiny_bundle, OnnxSession(tiny_bundle / "model.onnx", "emissions", 1)
    )
    model = build_tagger(load_checkpoint(tiny_checkpoint / "dir"))
    text = "Angela Merkel met Emmanuel in Paris"
    encoding = pipeline.tokenizer.encode_batch([text])[0]
    ids = torch.tensor(
        [[*pipeline.tokenizer.prefix_ids, *encoding.ids, *pipeline.tokenizer.suffix_ids]]
    )
    with torch.no_grad():
        emissions = model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    from service.text.tokenizer import words_of

    first = torch.from_numpy(words_of(encoding).first_token + 1)
    expected_tags = [LABELS[t] for t in model.crf.decode(emissions[:, first])[0]]
    spans = pipeline.scheme.spans(np.asarray([LABELS.index(t) for t in expected_tags]))
    got = pipeline.predict([text]).entities[0]
    assert [(e.label) for e in got] == [label for _, _, label in spans]
    assert all(0.0 <= e.score <= 1.0 for e in got)


def _corrupt(tiny_checkpoint: Path, tmp_path: Path, edit) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint / "dir", target)
    edit(target)
    return target


def _drop_key(key: str):
    def edit(d: Path) -> None:
        state = load_file(str(d / "model.safetensors"))
        del state[key]
        save_file(state, str(d / "model.safetensors"))

    return edit


def _set_labels(labels: list[str]):
    def edit(d: Path) -> None:
        config = json.loads((d / "config.json").read_text())
        config["id2label"] = {str(i): t for i, t in enumerate(labels)}
        config["label2id"] = {t: i for i, t in enumerate(labels)}
        (d / "config.json").write_text(json.dumps(config))

    return edit


def _truncate(d: Path) -> None:
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_truncate, "cannot read weights"),
        (_drop_key("crf.transitions"), "lacks ['crf.transitions']"),
        (
            _drop_key("bert.encoder.layer.1.output.dense.weight"),
            "missing ['bert.encoder.layer.1.output.dense.weight']",
        ),
        (_set_labels([*LABELS, "B-ORG"]), "expected (8, 32) for 8 labels"),
        (
            _set_labels(["O", "PER", "B-LOC", "I-LOC", "B-FOOD", "I-FOOD", "B-X"]),
            "tags ['PER'] are not BIO/BIOES/BILOU",
        ),
        (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors or pytorch_model.bin"),
    ],
)
def test_broken_checkpoints_fail_with_a_clear_message_and_leave_nothing(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, message: str
) -> None:
    source = _corrupt(tiny_checkpoint, tmp_path, edit)
    out = tmp_path / "bundles" / "broken"
    assert _export(["--checkpoint", str(source), "--out", str(out), "--max-length", "16"]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no partial staging dir


def test_pt_checkpoint_needs_base_and_labels(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert (
        _export(["--checkpoint", str(tiny_checkpoint / "model.pt"), "--out", str(tmp_path / "x")])
        == 1
    )
    assert "pass --base DIR" in capsys.readouterr().err


def test_existing_bundle_is_kept_unless_forced(
    tiny_checkpoint: Path, tiny_bundle: Path, capsys
) -> None:
    before = (tiny_bundle / "bundle.json").read_text()
    assert _export(["--checkpoint", str(tiny_checkpoint / "dir"), "--out", str(tiny_bundle)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert (tiny_bundle / "bundle.json").read_text() == before


def test_tampered_onnx_is_rejected_by_the_loader(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, copy)
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="does not match the manifest"):
        verify_bundle(copy)
