"""The NER family's API bodies: ``/v1/entities``'s request and response, and the result per text
(also in ``/v1/parse``), built from the runtime's :class:`~families.ner.runtime.NerPrediction`. The
batch scorer writes the same result objects."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from families.ner.runtime import NerPrediction
from service.schemas import EXACTLY_ONE_OF_TEXT_OR_TEXTS, ModelRef, TextsRequest


class EntityOut(BaseModel):
    label: str = Field(description="Entity type, e.g. FOOD.")
    start: int = Field(description="Offset of the first character (Python str index).")
    end: int = Field(description="Offset after the last character: text[start:end] == text.")
    text: str
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="How sure the model is of this entity; its meaning depends on the bundle's "
        "head (/v1/models details.head): a tagger (crf, softmax) gives the probability that "
        "exactly these words carry exactly these tags, a span head the geometric mean of the "
        "span's start, end and mean inside probabilities.",
    )


class TextEntities(BaseModel):
    entities: list[EntityOut]


class EntitiesRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "tushar se 2 misal mangwao"}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )


class EntitiesResponse(BaseModel):
    model: ModelRef
    results: list[TextEntities] = Field(description="One entry per input text, in order.")


def entity_results(prediction: NerPrediction) -> list[TextEntities]:
    """One ``TextEntities`` per text of the prediction, in order."""
    return [
        TextEntities(entities=[EntityOut(**vars(e)) for e in found])
        for found in prediction.entities
    ]
