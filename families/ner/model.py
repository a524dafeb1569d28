"""Build the PyTorch token tagger to export: any encoder ``AutoModelForTokenClassification`` builds
from ``config.json``, a linear ``classifier`` and, for CRF heads, a ``torchcrf.CRF`` under ``crf.``.

The encoder's weights may sit under the architecture's own prefix (``roberta.``) or under the
attribute name the training code chose (``self.bert = AutoModel...`` on an XLM-R config gives
``bert.``); the prefix is found among those, or given. Every mismatch between labels, config and
weights stops here with a message naming it, before any slow step runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torchcrf import CRF
from transformers import AutoModelForTokenClassification, PreTrainedModel

from export.checkpoint import RawCheckpoint, load_checked
from export.encoders import find_encoder_prefix, model_inputs
from export.errors import ExportError
from families.ner.tagging import SchemeName, TagSchemeError, detect_scheme

CRF_KEYS = ("crf.start_transitions", "crf.end_transitions", "crf.transitions")
HEAD_KEYS = ("classifier.weight", "classifier.bias")
Head = Literal["crf", "softmax"]


class TokenScores(nn.Module):
    """``f(*inputs) -> [batch, tokens, tags]``: logits (CRF emissions) or their log-softmax."""

    def __init__(self, model: PreTrainedModel, input_names: list[str], log_softmax: bool) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.log_softmax = log_softmax

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(**dict(zip(self.input_names, inputs, strict=True))).logits
        return torch.log_softmax(logits, dim=-1) if self.log_softmax else logits


@dataclass
class Tagger:
    """What ONNX will run (``scores``) and what the manifest records (CRF, scheme, layout)."""

    scores: TokenScores
    crf: CRF | None
    labels: list[str]
    scheme: SchemeName
    encoder_prefix: str  # where the encoder's weights were found in the checkpoint
    crf_positions: Literal["words", "cls+words"] = "words"  # what the CRF ran over in training

    @property
    def head(self) -> Head:
        return "softmax" if self.crf is None else "crf"

    @property
    def model(self) -> PreTrainedModel:
        return self.scores.model

    @property
    def input_names(self) -> list[str]:
        return self.scores.input_names


def _check_head(raw: RawCheckpoint, head: Head) -> None:
    k, hidden = len(raw.labels), int(raw.config.hidden_size)
    needed = [*HEAD_KEYS, *(CRF_KEYS if head == "crf" else ())]
    absent = [key for key in needed if key not in raw.state_dict]
    if absent:
        raise ExportError(f"{raw.source}: state dict lacks {absent}")
    expected = {
        "classifier.weight": (k, hidden),
        "classifier.bias": (k,),
        "crf.start_transitions": (k,),
        "crf.end_transitions": (k,),
        "crf.transitions": (k, k),
    }
    for key in needed:
        if tuple(raw.state_dict[key].shape) != expected[key]:
            raise ExportError(
                f"{raw.source}: {key} has shape {tuple(raw.state_dict[key].shape)}, expected "
                f"{expected[key]} for {k} labels and hidden size {hidden}"
            )


def _load_model(raw: RawCheckpoint, prefix_flag: str | None) -> tuple[PreTrainedModel, str]:
    config = raw.config
    config.num_labels = len(raw.labels)
    config.id2label = dict(enumerate(raw.labels))
    config.label2id = {label: i for i, label in enumerate(raw.labels)}
    try:
        model = AutoModelForTokenClassification.from_config(config)
    except ValueError as exc:
        raise ExportError(f"{raw.source}: no token classifier for this config ({exc})") from exc
    prefix = find_encoder_prefix(raw.state_dict, model, prefix_flag)
    own, lead = model.base_model_prefix, f"{prefix}." if prefix else ""
    weights = {}
    for key, value in raw.state_dict.items():
        if key.startswith(("crf.", "classifier.")):
            if key in HEAD_KEYS:
                weights[key] = value
        elif key.startswith(lead):
            if not key[len(lead) :].startswith("pooler."):  # the token head never reads it
                weights[f"{own}.{key[len(lead) :]}"] = value
        else:
            weights[key] = value  # reported below as unexpected
    load_checked(model, weights, raw.source, "encoder config")
    return model.eval(), prefix


def build_tagger(
    raw: RawCheckpoint, head: Head | None = None, encoder_prefix: str | None = None
) -> Tagger:
    """``head`` None: detected (CRF keys present → CRF head, none → softmax token classifier)."""
    try:
        scheme = detect_scheme(raw.labels)
    except TagSchemeError as exc:
        raise ExportError(f"labels {raw.labels}: {exc}") from exc
    if len(set(raw.labels)) != len(raw.labels):
        raise ExportError(f"duplicate labels in {raw.labels}")
    head = head or ("crf" if any(k in raw.state_dict for k in CRF_KEYS) else "softmax")
    _check_head(raw, head)
    crf = None
    if head == "crf":
        crf = CRF(len(raw.labels), batch_first=True)
        crf.load_state_dict({k.removeprefix("crf."): raw.state_dict[k] for k in CRF_KEYS})
        if not all(torch.isfinite(t).all() for t in crf.state_dict().values()):
            raise ExportError(f"{raw.source}: CRF scores contain NaN or infinity")
        crf = crf.eval()
    model, prefix = _load_model(raw, encoder_prefix)
    scores = TokenScores(model, model_inputs(model), log_softmax=head == "softmax").eval()
    return Tagger(scores, crf, list(raw.labels), scheme, prefix)
