"""The NER family as the service sees it (registered in ``service/families.py``)."""

from __future__ import annotations

from typing import Any

from families.ner.results import entity_results
from families.ner.runtime import NerPipeline, same_entities
from families.ner.spans import bio_entities, bio_tags
from families.ner.spec import NerManifest
from service.runtime.family import BadRecord, Runtime, ServingFamily, Unit
from service.text.tokenizer import words_of


class EntityRecords:
    """Batch records of an NER model: ``entities`` results; ``--eval`` follows the training build
    (``default_models/evaluation.py``): gold and predicted spans become BIO tags over the
    service's words and entities are read back with seqeval's rules, so a unit is (type, first
    word, last word)."""

    gold_field = "entities"
    items_key = "entities"

    def results(
        self, prediction: Any, labels: list[str], return_scores: bool
    ) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in entity_results(prediction)]

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
        try:
            gold_spans = [(int(e["start"]), int(e["end"]), str(e["label"])) for e in gold]
        except (TypeError, KeyError, ValueError) as exc:
            raise BadRecord("entities must be a list of {start, end, label}") from exc
        if not isinstance(runtime, NerPipeline):
            raise TypeError(f"an NER record needs the NER runtime, not {type(runtime).__name__}")
        (encoded,) = runtime.tokenizer.encode_batch([text])
        starts = [int(s) for s in words_of(encoded).char_start]
        predicted = [(e["start"], e["end"], e["label"]) for e in result["entities"]]
        return bio_entities(bio_tags(starts, gold_spans)), bio_entities(bio_tags(starts, predicted))


FAMILY = ServingFamily(
    task="ner",
    manifest=NerManifest,
    runtimes={"crf": NerPipeline.from_bundle, "softmax": NerPipeline.from_bundle},
    route="ner",
    batch=EntityRecords(),
    agreement=same_entities,
)
