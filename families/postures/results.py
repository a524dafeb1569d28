"""The postures family's API bodies: ``/v1/postures``'s request and response, and the result per
document, built from the classify runtime's :class:`~families.classify.runtime.ClassPrediction`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from families.classify.results import ClassesRequest, per_text_fields
from families.classify.runtime import ClassPrediction
from service.schemas import (
    EXACTLY_ONE_OF_TEXT_OR_TEXTS,
    REASONS_DESCRIPTION,
    REVIEW_DESCRIPTION,
    ModelRef,
    ReviewedResult,
    ReviewReasonOut,
    TopK,
)


class PostureOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0, le=1.0, description="The class's calibrated threshold; predicted when reached."
    )


class DocumentPostures(ReviewedResult):
    postures: list[PostureOut] = Field(description="Predicted postures, most probable first.")
    windows: int = Field(description="Model windows read.")
    tokens: int = Field(description="Content tokens of the text (before any truncation).")
    truncated: bool = Field(description="True when the text was not read to its end.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every class's probability (with return_scores)."
    )
    review: bool | None = Field(default=None, description=REVIEW_DESCRIPTION)
    reasons: list[ReviewReasonOut] | None = Field(default=None, description=REASONS_DESCRIPTION)


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
