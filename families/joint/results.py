"""What the batch scorer writes for a joint prediction: per text its entities (as ``/v1/entities``
answers them) and every sequence head's decided classes (as ``/v1/classify`` answers its labels).
``/v1/parse``, ``/v1/entities`` and ``/v1/classify`` build their answers from the runtime's
:class:`~service.runtime.family.SequenceHeads` capability (``service.api``)."""

from __future__ import annotations

from typing import Any

from families.classify.results import ClassOut
from families.joint.runtime import JointPrediction
from families.ner.results import entity_results


def joint_results(prediction: JointPrediction) -> list[dict[str, Any]]:
    """One object per text: ``entities`` and ``heads`` (head name -> its decided classes)."""
    return [
        {
            "entities": entities.model_dump(mode="json")["entities"],
            "heads": {
                name: [ClassOut(**vars(c)).model_dump(mode="json") for c in head.labels[i]]
                for name, head in prediction.heads.items()
            },
        }
        for i, entities in enumerate(entity_results(prediction))
    ]
