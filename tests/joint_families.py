"""Tiny random joint models (one encoder, intent + command heads, a masked token head) on the
encoders of :mod:`tests.families`, in both checkpoint forms, as training code writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torchcrf import CRF
from transformers import AutoModel, AutoTokenizer

from tests.families import ENCODERS, TOKENIZERS, tiny_config

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-PHONE", "I-PHONE"]
MASKED = ["I-PHONE"]  # a one-token type: its I- tag can never occur
INTENTS = ["order_food", "track_order", "cancel", "greet"]
COMMANDS = ["none", "call", "open_app"]


class JointNet(nn.Module):
    """``self.<attr> = AutoModel...``, two sequence heads, a token head, a CRF and the fixed
    additive logit mask (0 / -1e9) as a buffer, the way the Vietnamese assistant model does."""

    def __init__(self, config: object, attr: str, crf: bool) -> None:
        super().__init__()
        setattr(self, attr, AutoModel.from_config(config))
        hidden = getattr(config, "hidden_size", None) or config.dim  # type: ignore[attr-defined]
        self.intent_classifier = nn.Linear(hidden, len(INTENTS))
        self.command_classifier = nn.Linear(hidden, len(COMMANDS))
        self.entity_classifier = nn.Linear(hidden, len(TAGS))
        if crf:
            self.crf = CRF(len(TAGS), batch_first=True)
        mask = torch.tensor([-1e9 if t in MASKED else 0.0 for t in TAGS])
        self.register_buffer("label_mask", mask)


@dataclass(frozen=True)
class JointCase:
    model_type: str
    head: str  # crf | softmax
    attr: str
    form: str  # dir | pt

    @property
    def id(self) -> str:
        return f"{self.model_type}-{self.head}-{self.form}"


def write_joint(root: Path, case: JointCase, seed: int = 0) -> Path:
    """Both checkpoint forms: ``dir/`` (config head_labels) and ``model.pt`` + ``base/`` + label
    files. The masked tag's bias is raised so that the unmasked argmax would often choose it."""
    torch.manual_seed(seed)
    kind, _ = ENCODERS[case.model_type]
    tok_dir = TOKENIZERS[kind](root / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    config = tiny_config(case.model_type, len(tokenizer))
    module = JointNet(config, case.attr, case.head == "crf")
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("_classifier.weight") or name.startswith("crf."):
                p.normal_(0, 0.5)
        module.entity_classifier.bias[TAGS.index("B-PHONE")] += 1.0
        module.entity_classifier.bias[TAGS.index("I-PHONE")] += 3.0
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    config.save_pretrained(str(root / "base"))
    config.id2label = dict(enumerate(TAGS))
    config.label2id = {t: i for i, t in enumerate(TAGS)}
    tokenizer.save_pretrained(str(root / "dir"))
    config.save_pretrained(str(root / "dir"))
    written = json.loads((root / "dir" / "config.json").read_text())
    written["head_labels"] = {"intent": INTENTS, "command": COMMANDS}
    (root / "dir" / "config.json").write_text(json.dumps(written, indent=2))
    save_file(state, str(root / "dir" / "model.safetensors"))
    torch.save({"model_state_dict": state, "epoch": 3}, root / "model.pt")
    for name, labels in (("labels", TAGS), ("intent", INTENTS), ("command", COMMANDS)):
        (root / f"{name}.txt").write_text("\n".join(labels) + "\n")
    return root


def source_args(root: Path, form: str) -> list[str]:
    if form == "dir":
        return ["--checkpoint", str(root / "dir")]
    return ["--checkpoint", str(root / "model.pt"), "--base", str(root / "base"),
            "--labels", str(root / "labels.txt"), "--head-labels", f"intent={root}/intent.txt",
            "--head-labels", f"command={root}/command.txt"]  # fmt: skip


# Two encoders in every run; the other four (and the other checkpoint forms) with JOINT_ALL=1.
CASES = [
    JointCase("bert", "crf", "bert", "dir"),
    JointCase("xlm-roberta", "softmax", "roberta", "pt"),
]
ALL_CASES = [
    *CASES,
    JointCase("bert", "softmax", "encoder", "pt"),
    JointCase("xlm-roberta", "crf", "bert", "dir"),
    JointCase("roberta", "crf", "roberta", "pt"),
    JointCase("roberta", "softmax", "model", "dir"),
    JointCase("distilbert", "crf", "distilbert", "dir"),
    JointCase("distilbert", "softmax", "encoder", "pt"),
    JointCase("electra", "crf", "electra", "pt"),
    JointCase("electra", "softmax", "model", "dir"),
    JointCase("deberta-v2", "crf", "deberta", "dir"),
    JointCase("deberta-v2", "softmax", "bert", "pt"),
]
