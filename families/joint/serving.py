"""The joint family as the service sees it (registered in ``service/families.py``).

A joint bundle answers ``/v1/parse`` alone (its own route: intent, entities and its other heads
from one encoder pass), and serves ``/v1/entities`` (the token head) and ``/v1/classify`` (one
sequence head, ``head``) on the side: a request naming no model takes it there only when nothing
else serves the route (``yields_on_also_routes``).
"""

from __future__ import annotations

from typing import Any

from families.joint.results import joint_results
from families.joint.runtime import JointPrediction, JointRuntime
from families.joint.spec import JointManifest
from families.ner.serving import EntityRecords
from service.runtime.family import Runtime, ServingFamily, Unit


class JointRecords:
    """Batch records of a joint model: per text ``entities`` and every head's classes;
    ``--eval`` scores the entities as the NER family does (gold ``entities``, seqeval units over
    the service's words, read by the token head's own tokenizer)."""

    gold_field = "entities"
    items_key = "entities"

    def results(
        self, prediction: Any, labels: list[str], return_scores: bool
    ) -> list[dict[str, Any]]:
        if not isinstance(prediction, JointPrediction):
            raise TypeError(f"not a joint prediction: {type(prediction).__name__}")
        return joint_results(prediction)

    def result(self, prediction: Any, labels: list[str], return_scores: bool) -> dict[str, Any]:
        return self.results(prediction, labels, return_scores)[0]

    def eval_classes(self, labels: list[str]) -> list[str] | None:
        return None  # seqeval: the entity types seen in gold or predictions

    def eval_units(
        self,
        runtime: Runtime[Any, Any],
        labels: list[str],
        text: str,
        gold: Any,
        result: dict[str, Any],
    ) -> tuple[set[Unit], set[Unit]]:
        if not isinstance(runtime, JointRuntime):
            raise TypeError(f"a joint record needs the joint runtime, not {type(runtime).__name__}")
        return EntityRecords().eval_units(runtime.tagger, labels, text, gold, result)


FAMILY = ServingFamily(
    task="joint",
    manifest=JointManifest,
    runtimes={"joint": JointRuntime.from_bundle},
    route="parse",
    batch=JointRecords(),
    also_routes=("ner", "classify"),
    yields_on_also_routes=True,
)
