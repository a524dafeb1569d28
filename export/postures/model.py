"""Build ``LongformerForSequenceClassification`` (multi-label) from a checkpoint, checked."""

from __future__ import annotations

from transformers import LongformerConfig, LongformerForSequenceClassification

from export.checkpoint import RawCheckpoint
from export.errors import ExportError

HEAD_SHAPES = {
    "classifier.dense.weight": lambda k, h: (h, h),
    "classifier.out_proj.weight": lambda k, h: (k, h),
    "classifier.out_proj.bias": lambda k, h: (k,),
}


def build_longformer(raw: RawCheckpoint) -> LongformerForSequenceClassification:
    config = raw.config
    if not isinstance(config, LongformerConfig):
        raise ExportError(
            f"{raw.source}: config model_type is {config.model_type!r}, not longformer"
        )
    labels, hidden = raw.labels, int(config.hidden_size)
    if len(set(labels)) != len(labels):
        raise ExportError(f"duplicate labels in {labels}")
    for key, shape_of in HEAD_SHAPES.items():
        if key not in raw.state_dict:
            raise ExportError(f"{raw.source}: state dict lacks {key!r}")
        shape, expected = tuple(raw.state_dict[key].shape), shape_of(len(labels), hidden)
        if shape != expected:
            raise ExportError(
                f"{raw.source}: {key} has shape {shape}, expected {expected} for "
                f"{len(labels)} labels and hidden size {hidden}"
            )
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "multi_label_classification"
    model = LongformerForSequenceClassification(config)
    try:
        result = model.load_state_dict(raw.state_dict, strict=False)
    except RuntimeError as exc:
        raise ExportError(f"{raw.source}: weights do not fit the config: {exc}") from exc
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ExportError(
            f"{raw.source}: weights do not match the config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model.eval()
