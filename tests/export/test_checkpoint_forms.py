"""Every checkpoint form people save exports to the same bundle (same ONNX sha256), for a tiny
model of every family; anything else is refused naming the top-level keys found."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from export.checkpoint import load_checkpoint
from export.errors import ExportError
from service.bundle import sha256_of
from tests.classify_families import write_classifier
from tests.families import BIO, write_tagger

StateDict = dict[str, torch.Tensor]
# Manifest entries that differ between two exports of the same weights (name from --out, paths,
# timestamps, timings); everything else (labels, head, graph and tokenizer hashes) must match.
_PER_RUN = ("name", "export", "parity", "selfcheck")


def _lightning(state: StateDict) -> dict[str, object]:
    """What ``Trainer.save_checkpoint`` writes for a LightningModule holding ``self.model``."""
    return {
        "epoch": 2,
        "global_step": 40,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in state.items()},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hyper_parameters": {"lr": 3e-5},
    }


# form -> how it is written from the model's state dict (None: the Hugging Face directory)
WRITERS: dict[str, Callable[[StateDict, Path], None] | None] = {
    "hf-dir": None,
    "bare": lambda state, path: torch.save(state, path),
    "model_state_dict": lambda state, path: torch.save(
        {"model_state_dict": state, "optimizer_state_dict": {}, "epoch": 3}, path
    ),
    "model": lambda state, path: torch.save({"model": state, "step": 7}, path),
    "lightning": lambda state, path: torch.save(_lightning(state), path),
    "safetensors": lambda state, path: save_file(state, str(path)),
}


@dataclass(frozen=True)
class Family:
    id: str
    command: str
    write: Callable[[Path], object]
    window: tuple[str, ...]
    extra_forms: tuple[str, ...] = ()


FAMILIES = [
    # The encoder sits under ``model.`` in the training code: a Lightning module that IS the
    # tagger ("lightning-own") must keep the prefix, one wrapping it ("lightning") must strip it.
    Family(
        "ner-crf",
        "ner",
        lambda root: write_tagger(root, "bert", "crf", BIO, "model"),
        ("--max-length", "16", "--stride", "4"),
        ("lightning-own",),
    ),
    Family(
        "ner-softmax",
        "ner",
        lambda root: write_tagger(root, "bert", "softmax", BIO, None),
        ("--max-length", "16", "--stride", "4"),
    ),
    Family(
        "classify-multi",
        "classify",
        lambda root: write_classifier(root, "bert", "multi"),
        ("--max-length", "16", "--stride", "4"),
    ),
    Family(
        "classify-single",
        "classify",
        lambda root: write_classifier(root, "bert", "single"),
        ("--max-length", "16", "--stride", "4"),
    ),
    Family(
        "postures",
        "postures",
        lambda root: _longformer(root),
        ("--max-length", "64", "--stride", "16"),
    ),
]


def _longformer(root: Path) -> Path:
    from default_models.random_checkpoint import write_random_longformer

    return write_random_longformer(root, "tiny")


def _source(root: Path, form: str) -> list[str]:
    if form == "hf-dir":
        return ["--checkpoint", str(root / "dir")]
    state = load_file(str(root / "dir" / "model.safetensors"))
    path = root / f"{form}.{'safetensors' if form == 'safetensors' else 'pt'}"
    writer = WRITERS.get(form)
    if writer is not None:
        writer(state, path)
    else:  # lightning-own: the LightningModule is the network itself, keys as saved
        assert form == "lightning-own"
        torch.save({"state_dict": state, "epoch": 1}, path)
    return ["--checkpoint", str(path), "--base", str(root / "base"),
            "--labels", str(root / "labels.txt")]  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.id)
def test_every_form_exports_the_same_onnx(family: Family, tmp_path: Path) -> None:
    from export.cli import main

    family.write(tmp_path / "ckpt")
    digests, manifests = {}, {}
    for form in (*WRITERS, *family.extra_forms):
        out = tmp_path / "bundles" / form
        args = [*_source(tmp_path / "ckpt", form), "--out", str(out), *family.window]
        assert main([family.command, *args]) == 0, form
        digests[form] = sha256_of(out / "model.onnx")
        manifest = json.loads((out / "bundle.json").read_text())
        manifests[form] = {k: v for k, v in manifest.items() if k not in _PER_RUN}
    assert len(set(digests.values())) == 1, digests
    reference = manifests["hf-dir"]
    assert reference["onnx"]["sha256"] == digests["hf-dir"]
    assert all(m == reference for m in manifests.values()), family.id


def _files(tmp_path: Path) -> tuple[Path, Path]:
    write_tagger(tmp_path, "bert", "softmax", BIO, None)
    return tmp_path / "base", tmp_path / "labels.txt"


def test_unknown_layout_is_refused_naming_the_keys(tmp_path: Path) -> None:
    base, labels = _files(tmp_path)
    state = load_file(str(tmp_path / "dir" / "model.safetensors"))
    path = tmp_path / "odd.pt"
    torch.save({"epoch": 1, "weights": state}, path)
    with pytest.raises(ExportError) as info:
        load_checkpoint(path, base, labels)
    message = str(info.value)
    assert "top-level keys ['epoch', 'weights']" in message
    assert "'model_state_dict' or 'state_dict' or 'model'" in message


def test_a_tensor_list_is_refused(tmp_path: Path) -> None:
    base, labels = _files(tmp_path)
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ExportError, match="a list, not a dict"):
        load_checkpoint(path, base, labels)


def test_lightning_keys_are_offered_stripped_but_not_chosen_by_the_reader(tmp_path: Path) -> None:
    base, labels = _files(tmp_path)
    state = load_file(str(tmp_path / "dir" / "model.safetensors"))
    torch.save(_lightning(state), tmp_path / "lit.ckpt")
    raw = load_checkpoint(tmp_path / "lit.ckpt", base, labels)
    assert set(raw.state_dict) == {f"model.{k}" for k in state}
    [(what, stripped)] = raw.alternatives
    assert "'model.' prefix stripped" in what
    assert set(stripped) == set(state)


def test_weights_that_fit_in_no_reading_name_every_try(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from export.cli import main

    base, labels = _files(tmp_path)
    state = load_file(str(tmp_path / "dir" / "model.safetensors"))
    state.pop("classifier.weight")
    torch.save(_lightning(state), tmp_path / "lit.ckpt")
    args = ["--checkpoint", str(tmp_path / "lit.ckpt"), "--base", str(base)]
    code = main(["ner", *args, "--labels", str(labels), "--out", str(tmp_path / "b")])
    assert code != 0
    assert not (tmp_path / "b").exists()
    error = capsys.readouterr().err
    assert "as saved:" in error
    assert "with the 'model.' prefix stripped:" in error
    assert "lacks ['classifier.weight']" in error
