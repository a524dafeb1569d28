"""Build the PyTorch BERT-CRF (encoder, linear emission head, ``torchcrf.CRF``) to export.

Every mismatch between labels, config and weights stops here with a message naming it, before any
slow step runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchcrf import CRF
from transformers import AutoModelForTokenClassification, PreTrainedModel

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from service.ner.tagging import BioScheme, TagSchemeError

CRF_KEYS = ("crf.start_transitions", "crf.end_transitions", "crf.transitions")
HEAD_KEYS = ("classifier.weight", "classifier.bias")
_IGNORABLE = ("position_ids",)


@dataclass
class BertCrf:
    """The emission model (what ONNX will run) and the CRF (whose scores go into the manifest)."""

    emitter: PreTrainedModel
    crf: CRF
    labels: list[str]


def _check_shapes(raw: RawCheckpoint, num_labels: int) -> None:
    state = raw.state_dict
    absent = [k for k in (*HEAD_KEYS, *CRF_KEYS) if k not in state]
    if absent:
        raise ExportError(f"{raw.source}: state dict lacks {absent}")
    expected = {
        "classifier.weight": (num_labels, raw.config.hidden_size),
        "classifier.bias": (num_labels,),
        "crf.start_transitions": (num_labels,),
        "crf.end_transitions": (num_labels,),
        "crf.transitions": (num_labels, num_labels),
    }
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ExportError(
                f"{raw.source}: {key} has shape {tuple(state[key].shape)}, expected {shape} "
                f"for {num_labels} labels and hidden size {raw.config.hidden_size}"
            )


def _load_emitter(raw: RawCheckpoint, labels: list[str]) -> PreTrainedModel:
    config = raw.config
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    model = AutoModelForTokenClassification.from_config(config)
    prefix = f"{model.base_model_prefix}."
    if not any(k.startswith(prefix) for k in raw.state_dict):
        raise ExportError(f"{raw.source}: no encoder weights (keys starting with {prefix!r})")
    weights = {
        k: v for k, v in raw.state_dict.items() if not k.startswith(("crf.", f"{prefix}pooler."))
    }
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise ExportError(f"{raw.source}: weights do not fit the config: {exc}") from exc
    missing = [k for k in result.missing_keys if not k.endswith(_IGNORABLE)]
    unexpected = [k for k in result.unexpected_keys if not k.endswith(_IGNORABLE)]
    if missing or unexpected:
        raise ExportError(
            f"{raw.source}: weights do not match the encoder config: "
            f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}"
        )
    return model.eval()


def build_bert_crf(raw: RawCheckpoint) -> BertCrf:
    try:
        BioScheme.parse(raw.labels)
    except TagSchemeError as exc:
        raise ExportError(f"labels {raw.labels}: {exc}") from exc
    _check_shapes(raw, len(raw.labels))
    crf = CRF(len(raw.labels), batch_first=True)
    crf.load_state_dict({k.removeprefix("crf."): raw.state_dict[k] for k in CRF_KEYS})
    for tensor in crf.state_dict().values():
        if not torch.isfinite(tensor).all():
            raise ExportError(f"{raw.source}: CRF scores contain NaN or infinity")
    return BertCrf(emitter=_load_emitter(raw, raw.labels), crf=crf.eval(), labels=raw.labels)
