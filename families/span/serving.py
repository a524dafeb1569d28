"""The span family as the service sees it (registered in ``service/families.py``).

Span bundles answer the NER route (``/v1/entities``, and the entities of ``/v1/parse``) with the
NER family's result objects; entities of different types may overlap.
"""

from __future__ import annotations

from typing import Any

from families.ner.results import entity_results
from families.ner.runtime import same_entities
from families.span.runtime import SpanRuntime
from families.span.spec import SpanManifest
from service.runtime.family import BadRecord, Runtime, ServingFamily, Unit


class SpanRecords:
    """Batch records of a span model: ``entities`` results, as ``/v1/entities`` answers them.
    ``--eval`` compares exact spans, a unit being (type, first character, end character): spans
    may overlap and nest, which the BIO round trip of the NER family's evaluation cannot hold."""

    gold_field = "entities"
    items_key = "entities"

    def results(
        self, prediction: Any, labels: list[str], return_scores: bool
    ) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in entity_results(prediction)]

    def result(self, prediction: Any, labels: list[str], return_scores: bool) -> dict[str, Any]:
        return self.results(prediction, labels, return_scores)[0]

    def eval_classes(self, labels: list[str]) -> list[str] | None:
        return None  # the entity types seen in gold or predictions

    def eval_units(
        self,
        runtime: Runtime[Any, Any],
        labels: list[str],
        text: str,
        gold: Any,
        result: dict[str, Any],
    ) -> tuple[set[Unit], set[Unit]]:
        try:
            expected = {(str(e["label"]), int(e["start"]), int(e["end"])) for e in gold}
        except (TypeError, KeyError, ValueError) as exc:
            raise BadRecord("entities must be a list of {start, end, label}") from exc
        found = {(str(e["label"]), int(e["start"]), int(e["end"])) for e in result["entities"]}
        return expected, found


FAMILY = ServingFamily(
    task="span",
    manifest=SpanManifest,
    runtimes={"span": SpanRuntime.from_bundle},
    route="ner",
    batch=SpanRecords(),
    agreement=same_entities,
)
