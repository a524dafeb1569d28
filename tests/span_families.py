"""Tiny random span models (start / end / inside heads) on the six encoders of ``tests.families``,
written in both checkpoint forms (nothing downloaded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from tests.families import ENCODERS, TOKENIZERS, save_checkpoint, tiny_config

TYPES = ["PER", "LOC", "FOOD"]


class SpanTagger(nn.Module):
    """What span training code writes: an encoder attribute and three linear heads."""

    def __init__(
        self, config: Any, types: int, attr: str, shared_inside: bool, names: tuple[str, ...]
    ) -> None:
        super().__init__()
        setattr(self, attr, AutoModel.from_config(config))
        hidden = getattr(config, "hidden_size", None) or config.dim
        start, end, inside = names
        setattr(self, start, nn.Linear(hidden, types))
        setattr(self, end, nn.Linear(hidden, types))
        setattr(self, inside, nn.Linear(hidden, 1 if shared_inside else types))


HEAD_NAMES = ("start_head", "end_head", "inside_head")


def write_span_model(
    root: Path,
    model_type: str,
    attr: str = "bert",
    shared_inside: bool = False,
    names: tuple[str, ...] = HEAD_NAMES,
    seed: int = 0,
) -> Path:
    """``dir/`` (config with id2label = the types) and ``model.pt`` + ``base/`` + ``labels.txt``."""
    torch.manual_seed(seed)
    kind, _ = ENCODERS[model_type]
    tok_dir = TOKENIZERS[kind](root / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    config = tiny_config(model_type, len(tokenizer))
    module = SpanTagger(config, len(TYPES), attr, shared_inside, names)
    with torch.no_grad():  # probabilities spread over (0, 1): some words pass 0.5, most do not
        for name, p in module.named_parameters():
            if name.split(".")[0] in names:
                p.normal_(0, 0.8 if p.dim() > 1 else 0.3)
    save_checkpoint(root, module, config, tokenizer, TYPES)
    return root


@dataclass(frozen=True)
class SpanCase:
    model_type: str
    form: str  # "dir" or "pt"
    attr: str = "bert"
    shared_inside: bool = False

    @property
    def id(self) -> str:
        inside = "-shared" if self.shared_inside else ""
        return f"{self.model_type}-{self.form}-{self.attr}{inside}"


SPAN_CASES = [
    SpanCase(model_type, form, attr, shared)
    for model_type, attr in [
        ("bert", "bert"),
        ("roberta", "roberta"),
        ("xlm-roberta", "bert"),
        ("distilbert", "encoder"),
        ("electra", "model"),
        ("deberta-v2", "bert"),
    ]
    for form, shared in (("dir", False), ("pt", True))
]
