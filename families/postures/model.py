"""``LongformerForSequenceClassification`` (multi-label) from a checkpoint, checked: the classify
family's builder, restricted to Longformer (for the benchmarks' PyTorch reference)."""

from __future__ import annotations

from transformers import LongformerForSequenceClassification

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from families.classify.model import build_classifier


def build_longformer(raw: RawCheckpoint) -> LongformerForSequenceClassification:
    if raw.config.model_type != "longformer":
        raise ExportError(
            f"{raw.source}: config model_type is {raw.config.model_type!r}, not longformer"
        )
    model = build_classifier(raw, "multi-label").model
    assert isinstance(model, LongformerForSequenceClassification)
    return model
