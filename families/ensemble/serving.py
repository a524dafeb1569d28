"""The ensemble family as the service sees it (registered in ``service/families.py``): a
multi-label classifier composed of other loaded bundles, on ``/v1/classify`` and
``/v1/postures``, with the classify family's result objects."""

from __future__ import annotations

from families.classify.results import classify_results
from families.classify.serving import ClassRecords
from families.ensemble.runtime import EnsembleRuntime
from families.ensemble.spec import EnsembleManifest
from service.runtime.family import ServingFamily

FAMILY = ServingFamily(
    task="ensemble",
    manifest=EnsembleManifest,
    runtimes={},
    composed={"multi-label": EnsembleRuntime.from_bundle},
    route="classify",
    also_routes=("postures",),
    batch=ClassRecords(classify_results, "labels"),
)
