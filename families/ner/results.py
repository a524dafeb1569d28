"""The NER family's API result objects: what ``/v1/entities`` (and ``/v1/parse``) answer per text,
built from the runtime's :class:`~families.ner.runtime.NerPrediction`. The batch scorer writes the
same objects."""

from __future__ import annotations

from pydantic import BaseModel, Field

from families.ner.runtime import NerPrediction


class EntityOut(BaseModel):
    label: str = Field(description="Entity type, e.g. FOOD.")
    start: int = Field(description="Offset of the first character (Python str index).")
    end: int = Field(description="Offset after the last character: text[start:end] == text.")
    text: str
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="CRF probability that exactly these words carry exactly these tags.",
    )


class TextEntities(BaseModel):
    entities: list[EntityOut]


def entity_results(prediction: NerPrediction) -> list[TextEntities]:
    """One ``TextEntities`` per text of the prediction, in order."""
    return [
        TextEntities(entities=[EntityOut(**vars(e)) for e in found])
        for found in prediction.entities
    ]
