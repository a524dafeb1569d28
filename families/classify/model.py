"""Build the sequence classifier to export: whatever ``AutoModelForSequenceClassification`` builds
from ``config.json``, with the checkpoint's weights, checked.

The head (``classifier.*``, ``pre_classifier.*``, DeBERTa's ``pooler.*``) is the architecture's
own; the encoder's weights may sit under the architecture's prefix (``roberta.``) or under the
attribute the training code chose (found as for token taggers, or given). The problem type comes
from ``config.json`` (``multi_label_classification`` → sigmoid per class; single-label or unset →
softmax) unless the caller sets it. Longformer is traced through :class:`ExportableLongformer`
(blocked attention, global attention on CLS); every other encoder through HF's module itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from export.checkpoint import RawCheckpoint, load_checked
from export.encoders import find_encoder_prefix, model_inputs, position_limit
from export.errors import ExportError
from families.classify.spec import ClassifierHead
from families.postures.blocked_longformer import ExportableLongformer

_CONFIG_HEADS: dict[str | None, ClassifierHead] = {
    "multi_label_classification": "multi-label",
    "single_label_classification": "single-label",
}


class SequenceLogits(nn.Module):
    """``f(*inputs) -> [batch, classes]``: HF's classifier with positional inputs, for tracing."""

    def __init__(self, model: PreTrainedModel, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(**dict(zip(self.input_names, inputs, strict=True))).logits
        return logits


@dataclass
class Classifier:
    """The HF model, its head kind and what the graph takes."""

    model: PreTrainedModel
    head: ClassifierHead
    labels: list[str]
    encoder_prefix: str

    @property
    def longformer(self) -> bool:
        return self.model.config.model_type == "longformer"

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    @property
    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask"] if self.longformer else model_inputs(self.model)

    def traced_module(self) -> nn.Module:
        """What the ONNX graph computes (the same logits as :meth:`reference_logits`)."""
        if self.longformer:
            return ExportableLongformer(self.model)  # type: ignore[arg-type]
        return SequenceLogits(self.model, self.input_names).eval()

    def position_limit(self) -> int:
        if self.longformer:
            return ExportableLongformer(self.model).max_length  # type: ignore[arg-type]
        return position_limit(self.model)

    def reference_logits(self, inputs: dict[str, NDArray[np.int64]]) -> NDArray[np.float64]:
        """HF eager logits as the model was trained (Longformer: global attention on CLS)."""
        feed = {n: torch.from_numpy(inputs[n]) for n in model_inputs(self.model)}
        if self.longformer:
            feed.pop("token_type_ids", None)
            feed["global_attention_mask"] = torch.zeros_like(feed["input_ids"])
            feed["global_attention_mask"][:, 0] = 1
        with torch.no_grad():
            logits = self.model(**feed).logits
        out: NDArray[np.float64] = logits.double().numpy()
        return out


def problem_head(raw: RawCheckpoint, requested: ClassifierHead | None) -> ClassifierHead:
    """The head from the flag, else from config.json's problem_type (unset: single-label)."""
    problem = getattr(raw.config, "problem_type", None)
    if requested is not None:
        head = requested
    elif problem == "regression":
        raise ExportError(f"{raw.source}: problem_type regression is not a classifier")
    else:
        head = _CONFIG_HEADS.get(problem, "single-label")
    if head == "single-label" and len(raw.labels) < 2:
        raise ExportError(
            f"{raw.source}: a single-label (softmax) head needs at least two labels; for one "
            "sigmoid class pass --problem-type multi"
        )
    return head


def _weights(raw: RawCheckpoint, model: PreTrainedModel, prefix: str) -> dict[str, torch.Tensor]:
    """The checkpoint's keys renamed to the model's: encoder under its own prefix, head as is."""
    own, lead = model.base_model_prefix, f"{prefix}." if prefix else ""
    head_keys = {k for k in model.state_dict() if not k.startswith(f"{own}.")}
    weights = {}
    for key, value in raw.state_dict.items():
        if key in head_keys:
            weights[key] = value
        elif key.startswith(lead):
            weights[f"{own}.{key[len(lead) :]}"] = value
        else:
            weights[key] = value  # reported below as unexpected
    return weights


def build_classifier(
    raw: RawCheckpoint, head: ClassifierHead | None = None, encoder_prefix: str | None = None
) -> Classifier:
    """The checked eval-mode classifier; every mismatch is an ExportError naming it."""
    labels = list(raw.labels)
    if len(set(labels)) != len(labels):
        raise ExportError(f"duplicate labels in {labels}")
    chosen = problem_head(raw, head)
    config = raw.config
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = (
        "multi_label_classification" if chosen == "multi-label" else "single_label_classification"
    )
    try:
        model = AutoModelForSequenceClassification.from_config(config)
    except ValueError as exc:
        raise ExportError(f"{raw.source}: no sequence classifier for this config ({exc})") from exc
    prefix = find_encoder_prefix(raw.state_dict, model, encoder_prefix)
    load_checked(model, _weights(raw, model, prefix), raw.source, f"{config.model_type} classifier")
    return Classifier(model.eval(), chosen, labels, prefix)
