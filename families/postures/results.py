"""The postures family's API result objects: what ``/v1/postures`` answers per document, built
from the classify runtime's :class:`~families.classify.runtime.ClassPrediction`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from families.classify.runtime import ClassPrediction


class PostureOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0, le=1.0, description="The class's calibrated threshold; predicted when reached."
    )


class DocumentPostures(BaseModel):
    postures: list[PostureOut] = Field(description="Predicted postures, most probable first.")
    windows: int = Field(description="Model windows the document was split into.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every class's probability (with return_scores)."
    )


def posture_results(
    prediction: ClassPrediction, labels: list[str], return_scores: bool
) -> list[DocumentPostures]:
    """One ``DocumentPostures`` per document of the prediction, in order."""
    return [
        DocumentPostures(
            postures=[PostureOut(**vars(p)) for p in found],
            windows=windows,
            scores=dict(zip(labels, probs.tolist(), strict=True)) if return_scores else None,
        )
        for found, probs, windows in zip(
            prediction.labels, prediction.probabilities, prediction.windows, strict=True
        )
    ]
