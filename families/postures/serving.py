"""The postures family as the service sees it (registered in ``service/families.py``): multi-label
classifiers served by the classify runtime, on ``/v1/postures`` and on ``/v1/classify``."""

from __future__ import annotations

from families.classify.runtime import ClassifierPipeline, same_decisions
from families.classify.serving import ClassRecords
from families.postures.results import posture_results
from families.postures.spec import PostureManifest
from service.runtime.family import ServingFamily

FAMILY = ServingFamily(
    task="postures",
    manifest=PostureManifest,
    runtimes={"multi-label": ClassifierPipeline.from_bundle},
    route="postures",
    also_routes=("classify",),
    batch=ClassRecords(posture_results, "postures"),
    agreement=same_decisions,
)
