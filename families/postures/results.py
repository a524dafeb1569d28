"""The postures family's API bodies: ``/v1/postures``'s request and response, and the result per
document, built from the classify runtime's :class:`~families.classify.runtime.ClassPrediction`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from families.classify.results import ClassesRequest, ClassifiedText, per_text_fields
from families.classify.runtime import ClassPrediction
from service.schemas import (
    EXACTLY_ONE_OF_TEXT_OR_TEXTS,
    ModelRef,
    TopK,
)


class PostureOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0, le=1.0, description="The class's calibrated threshold; predicted when reached."
    )


class _PostureList(BaseModel):
    postures: list[PostureOut] = Field(description="Predicted postures, most probable first.")


class DocumentPostures(ClassifiedText, _PostureList):  # postures, then the classifier's fields
    pass


class PosturesRequest(ClassesRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Defendant moves to dismiss ...", "top_k": 3}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    # Re-declared for its description only: it keeps its place among ClassesRequest's fields.
    top_k: TopK | None = Field(
        default=None, description="Return at most this many predicted postures."
    )


class PosturesResponse(BaseModel):
    model: ModelRef
    results: list[DocumentPostures] = Field(description="One entry per input document, in order.")


def posture_results(
    prediction: ClassPrediction, labels: list[str], return_scores: bool
) -> list[DocumentPostures]:
    """One ``DocumentPostures`` per document of the prediction, in order."""
    return [
        DocumentPostures(postures=[PostureOut(**vars(p)) for p in found], **fields)
        for found, fields in per_text_fields(prediction, labels, return_scores)
    ]
