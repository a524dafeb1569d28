"""The classify family's API bodies: ``/v1/classify``'s request and response, and the result per
text, built from the runtime's :class:`~families.classify.runtime.ClassPrediction`. The batch
scorer writes the same result objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from families.classify.runtime import ClassPrediction, ClassScore
from service.schemas import (
    EXACTLY_ONE_OF_TEXT_OR_TEXTS,
    REASONS_DESCRIPTION,
    REVIEW_DESCRIPTION,
    TRUNCATION_DESCRIPTION,
    ModelRef,
    ReviewedResult,
    ReviewReasonOut,
    TextsRequest,
    TopK,
    TruncationPolicy,
    review_fields,
    reviews_per_text,
)


class ClassOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0,
        le=1.0,
        description="Multi-label: the class's threshold, predicted when reached. Single-label: the "
        "abstain threshold the top probability had to reach (0 when the bundle has none).",
    )


class ClassifiedText(ReviewedResult):
    """The fields of every classifier's result per text that follow its list of classes. A result
    puts its list first by naming a model that holds only the list as its second base:
    ``class TextClasses(ClassifiedText, _ClassList)`` (pydantic orders fields from the last base
    to the first), so the JSON keys stay in the order clients read."""

    windows: int = Field(description="Model windows read.")
    tokens: int = Field(description="Content tokens of the text (before any truncation).")
    truncated: bool = Field(description="True when the text was not read to its end.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every class's probability (with return_scores)."
    )
    review: bool | None = Field(default=None, description=REVIEW_DESCRIPTION)
    reasons: list[ReviewReasonOut] | None = Field(default=None, description=REASONS_DESCRIPTION)


class _ClassList(BaseModel):
    labels: list[ClassOut] = Field(
        description="Predicted classes, most probable first. Multi-label: every class at or above "
        "its threshold. Single-label: the most probable class, or none (abstained)."
    )


class TextClasses(ClassifiedText, _ClassList):
    pass


class ClassesRequest(TextsRequest):
    """The options of every classifier route (``/v1/classify``, ``/v1/postures``), in this order
    after the texts and the model."""

    top_k: TopK | None = Field(
        default=None, description="Return at most this many predicted classes."
    )
    return_scores: bool = Field(default=False, description="Also return every class's probability.")
    truncation: TruncationPolicy = Field(default="window", description=TRUNCATION_DESCRIPTION)


class ClassifyRequest(ClassesRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "where is my order?", "return_scores": True}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    head: str | None = Field(
        default=None,
        description="Bundles with several sequence heads only (e.g. a joint bundle): the head "
        "that answers (default: the bundle's intent head); /v1/models lists a bundle's heads.",
    )


class ClassifyResponse(BaseModel):
    model: ModelRef
    head: Literal["multi-label", "single-label"] = Field(
        description="multi-label: sigmoid per class + thresholds; single-label: softmax, argmax."
    )
    results: list[TextClasses] = Field(description="One entry per input text, in order.")


def classify_results(
    prediction: ClassPrediction, labels: list[str], return_scores: bool
) -> list[TextClasses]:
    """One ``TextClasses`` per text of the prediction, in order."""
    return [
        TextClasses(labels=[ClassOut(**vars(p)) for p in found], **fields)
        for found, fields in per_text_fields(prediction, labels, return_scores)
    ]


def per_text_fields(
    prediction: ClassPrediction, labels: list[str], return_scores: bool
) -> list[tuple[list[ClassScore], dict[str, Any]]]:
    """Per text of a classifier's prediction, in order: its predicted classes and the fields
    every classifier result shares (windows, tokens, truncated, scores, review and reasons).

    The one place that reads a :class:`ClassPrediction` into result bodies: ``/v1/classify``
    (:func:`classify_results`) and ``/v1/postures``
    (:func:`families.postures.results.posture_results`) only name their class lists.
    """
    return [
        (
            found,
            {
                "windows": windows,
                "tokens": tokens,
                "truncated": truncated,
                "scores": dict(zip(labels, probs.tolist(), strict=True)) if return_scores else None,
                **review_fields(decision),
            },
        )
        for found, probs, windows, tokens, truncated, decision in zip(
            prediction.labels,
            prediction.probabilities,
            prediction.windows,
            prediction.text_tokens,
            prediction.truncated,
            reviews_per_text(prediction.reviews, len(prediction.windows)),
            strict=True,
        )
    ]
