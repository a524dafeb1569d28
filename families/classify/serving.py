"""The classify family as the service sees it (registered in ``service/families.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from families.classify.results import classify_results
from families.classify.runtime import ClassifierPipeline, same_decisions
from families.classify.spec import ClassifyManifest
from service.runtime.family import BadRecord, Runtime, ServingFamily, Unit


@dataclass(frozen=True)
class ClassRecords:
    """Batch records of a classifier: the route's result object; ``--eval`` compares the gold
    ``labels`` with the predicted classes under ``key`` (units are (class, 0, 0))."""

    build: Callable[[Any, list[str], bool], Sequence[BaseModel]]
    key: str
    gold_field: str = "labels"

    @property
    def items_key(self) -> str:
        return self.key

    def results(
        self, prediction: Any, labels: list[str], return_scores: bool
    ) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in self.build(prediction, labels, return_scores)]

    def result(self, prediction: Any, labels: list[str], return_scores: bool) -> dict[str, Any]:
        return self.results(prediction, labels, return_scores)[0]

    def eval_classes(self, labels: list[str]) -> list[str] | None:
        return list(labels)

    def eval_units(
        self,
        runtime: Runtime[Any, Any],
        labels: list[str],
        text: str,
        gold: Any,
        result: dict[str, Any],
    ) -> tuple[set[Unit], set[Unit]]:
        if not isinstance(gold, list) or not all(isinstance(x, str) for x in gold):
            raise BadRecord("labels must be a list of strings")
        known = set(labels)
        return {(g, 0, 0) for g in gold if g in known}, {
            (p["label"], 0, 0) for p in result[self.key]
        }


FAMILY = ServingFamily(
    task="classify",
    manifest=ClassifyManifest,
    runtimes={
        "multi-label": ClassifierPipeline.from_bundle,
        "single-label": ClassifierPipeline.from_bundle,
    },
    route="classify",
    batch=ClassRecords(classify_results, "labels"),
    agreement=same_decisions,
)
