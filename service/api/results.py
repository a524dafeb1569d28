"""Result objects of the model routes, built from pipeline predictions.

The HTTP routes and the batch command (``service.batch``) both call these, so a text scored in
batch gets exactly the object the API returns for it.
"""

from __future__ import annotations

from service.api.schemas import (
    ClassOut,
    DocumentPostures,
    EntityOut,
    PostureOut,
    TextClasses,
    TextEntities,
)
from service.classify.pipeline import ClassPrediction
from service.ner.pipeline import NerPrediction


def entity_results(prediction: NerPrediction) -> list[TextEntities]:
    """One ``TextEntities`` per text of the prediction, in order."""
    return [
        TextEntities(entities=[EntityOut(**vars(e)) for e in found])
        for found in prediction.entities
    ]


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


def classify_results(
    prediction: ClassPrediction, labels: list[str], return_scores: bool
) -> list[TextClasses]:
    """One ``TextClasses`` per text of the prediction, in order."""
    return [
        TextClasses(
            labels=[ClassOut(**vars(p)) for p in found],
            windows=windows,
            scores=dict(zip(labels, probs.tolist(), strict=True)) if return_scores else None,
        )
        for found, probs, windows in zip(
            prediction.labels, prediction.probabilities, prediction.windows, strict=True
        )
    ]
