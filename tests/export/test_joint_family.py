"""Joint models (one encoder; intent + command heads; a masked token head, CRF or softmax) on
several encoders and both checkpoint forms: the export parity gate passes for every head, and
the served answers equal the PyTorch reference decode (multilingual text, exact offsets),
including a masked tag that the unmasked argmax would have chosen. Two encoders run by default;
``JOINT_ALL=1`` runs all six (each with both heads and both forms across the cases)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from export.checkpoint import load_checkpoint
from export.cli import main
from families.classify.runtime import probabilities_of
from families.joint.export import JointOptions
from families.joint.model import JointModel, build_joint
from families.joint.runtime import JointRuntime
from families.joint.spec import MASK_VALUE, PACKED_OUTPUT, JointManifest
from service.bundle import read_manifest, verify_bundle
from service.runtime.session import OnnxSession
from service.text.tokenizer import first_subtokens
from tests.export.test_ner_families import _reference
from tests.families import MULTILINGUAL
from tests.joint_families import (
    ALL_CASES,
    CASES,
    COMMANDS,
    INTENTS,
    TAGS,
    JointCase,
    source_args,
    write_joint,
)

RUN = ALL_CASES if os.environ.get("JOINT_ALL") else CASES
EXPORT = ["--max-length", "64", "--stride", "16", "--pooling", "command=mean"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=RUN, ids=[c.id for c in RUN])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[JointCase, Path, Path]:
    case: JointCase = request.param
    root = write_joint(tmp_path_factory.mktemp(case.id), case)
    out = root / "bundle"
    assert main(["joint", *source_args(root, case.form), "--out", str(out), *EXPORT]) == 0
    return case, root, out


def _model(root: Path, manifest: JointManifest) -> JointModel:
    """The PyTorch reference, built as the export built it (from the directory form)."""
    raw = load_checkpoint(root / "dir")

    options = JointOptions(checkpoint=root / "dir", out=root / "unused", pooling=("command=mean",))
    return build_joint(raw, options.head_options())


def test_export_records_every_head_and_passes_parity(
    exported: tuple[JointCase, Path, Path],
) -> None:
    case, _, out = exported
    manifest = verify_bundle(out)
    assert isinstance(manifest, JointManifest)
    spec = manifest.joint
    assert manifest.labels == TAGS and spec.token.masked_labels == ["I-PHONE"]
    assert spec.token.ner.head == case.head and spec.token.name == "entity"
    assert {h.name: h.labels for h in spec.sequence} == {"intent": INTENTS, "command": COMMANDS}
    assert {h.name: h.pooling for h in spec.sequence} == {"intent": "cls", "command": "mean"}
    assert spec.intent_head == "intent" and manifest.onnx.output == PACKED_OUTPUT
    assert manifest.parity.max_abs_diff <= manifest.parity.atol == 1e-4
    assert manifest.parity.tag_agreement == 1.0 and manifest.parity.cases > 10
    details = manifest.parity.details[0]
    assert {"entity_max_abs_diff", "intent_max_abs_diff", "command_max_abs_diff"} <= set(details)
    import onnx

    outputs = [o.name for o in onnx.load(str(out / "model.onnx")).graph.output]
    assert outputs == ["entity_logits", "intent_logits", "command_logits", PACKED_OUTPUT]


class _TokenView:
    """The joint model's token head as the NER reference decode reads a tagger."""

    def __init__(self, model: JointModel) -> None:
        self.model, self.input_names = model, model.input_names

    def scores(self, *inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model.module(*inputs)[0]
        return out


def _torch_heads(model: JointModel, raw: Any, text: str) -> dict[str, np.ndarray]:
    enc = raw.tokenizer(text)
    ids = torch.tensor([enc["input_ids"]])
    feed = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids)}  # fmt: skip
    with torch.no_grad():
        out = model.module(*(feed[n] for n in model.input_names))
    return {
        h.name: probabilities_of(out[1 + i][0].double().numpy(), h.kind)
        for i, h in enumerate(model.heads)
    }


def test_served_answers_equal_the_pytorch_reference(exported: tuple[JointCase, Path, Path]) -> None:
    _, root, out = exported
    manifest = read_manifest(out)
    assert isinstance(manifest, JointManifest)
    runtime = JointRuntime(manifest, out, OnnxSession(out / "model.onnx", PACKED_OUTPUT, 1))
    raw = load_checkpoint(root / "dir")
    model = _model(root, manifest)
    texts = [t for t in MULTILINGUAL if t.strip()]
    served = runtime.predict(texts)
    compared = entities = 0
    for i, text in enumerate(texts):
        expected = _reference(runtime.tagger, raw, _TokenView(model), text)  # type: ignore[arg-type]
        if expected is None:  # longer than one window: served windowed, not comparable
            continue
        got = served.entities[i]
        assert [(e.label, e.start, e.end) for e in got] == expected, text
        assert all(text[e.start : e.end] == e.text for e in got)
        for name, probs in _torch_heads(model, raw, text).items():
            np.testing.assert_allclose(served.heads[name].probabilities[i], probs, atol=1e-4)
            assert (
                served.heads[name].labels[i][0].label
                == runtime.heads[name].manifest.labels[int(np.argmax(probs))]
            )
        compared, entities = compared + 1, entities + len(got)
    assert compared >= len(texts) - 2 and entities > 5


def test_a_masked_tag_the_unmasked_argmax_would_choose_is_never_emitted(
    exported: tuple[JointCase, Path, Path],
) -> None:
    _, root, out = exported
    manifest = read_manifest(out)
    assert isinstance(manifest, JointManifest)
    runtime = JointRuntime(manifest, out, OnnxSession(out / "model.onnx", PACKED_OUTPUT, 1))
    raw = load_checkpoint(root / "dir")
    model = _model(root, manifest)
    masked = TAGS.index("I-PHONE")
    chosen_unmasked = 0
    texts = [t for t in MULTILINGUAL if t.strip()]
    for text in texts:
        enc = raw.tokenizer(text)
        ids = torch.tensor([enc["input_ids"]])
        feed = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "token_type_ids": torch.zeros_like(ids)}  # fmt: skip
        with torch.no_grad():
            hidden = model.module.encoder(**{n: feed[n] for n in model.input_names})[0]
            raw_logits = model.module.token_head(hidden)[0].numpy()  # no mask
        words = first_subtokens(np.asarray([-1 if w is None else w for w in enc.word_ids()]))
        chosen_unmasked += int((raw_logits[words].argmax(axis=1) == masked).sum())
    assert chosen_unmasked > 0  # without the mask the model would emit I-PHONE
    # The served scores hold exactly MASK_VALUE there, and no PHONE entity spans two words
    # (I-PHONE is the only way to continue one).
    prepared = runtime.prepare(texts)
    packed = runtime.tagger._scores(prepared.tagged.encoded, prepared.tagged.windows)
    assert all((runtime.token_scores(p)[:, masked] == MASK_VALUE).all() for w in packed for p in w)
    served = runtime.predict(texts)
    phones = [e for found in served.entities for e in found if e.label == "PHONE"]
    assert all(len(e.text.split()) == 1 for e in phones)
    decoded = runtime.tagger.decoder.decode(
        [runtime.token_scores(p)[1:-1] for w in packed for p in w[:1]], marginals=False
    )
    assert not any((decoded.word_tags(r) == masked).any() for r in range(len(decoded.lengths)))


def test_missing_and_unused_keys_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file, save_file

    root = write_joint(tmp_path, CASES[0])
    state = load_file(str(root / "dir" / "model.safetensors"))
    state["slot_head.dense.weight"] = torch.zeros(4, 4)
    save_file(state, str(root / "dir" / "model.safetensors"))
    args = ["joint", "--checkpoint", str(root / "dir"), "--out", str(tmp_path / "b")]
    assert main([*args, "--max-length", "32"]) == 1
    assert "unused keys ['slot_head.dense.weight']" in capsys.readouterr().err
    del state["slot_head.dense.weight"]
    save_file(state, str(root / "dir" / "model.safetensors"))
    assert main([*args, "--max-length", "32", "--sequence-head", "action_classifier"]) == 1
    assert "sequence heads ['action_classifier']" in capsys.readouterr().err
    assert main([*args, "--max-length", "32", "--mask-labels", "I-NOPE"]) == 1
    assert "--mask-labels ['I-NOPE']" in capsys.readouterr().err
    pt = ["joint", "--checkpoint", str(root / "model.pt"), "--base", str(root / "base"),
          "--labels", str(root / "labels.txt"), "--out", str(tmp_path / "c")]  # fmt: skip
    assert main([*pt, "--max-length", "32"]) == 1  # no label files for the sequence heads
    assert "no labels for sequence head 'command'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
