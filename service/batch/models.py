"""The batch command's only coupling to the model runtimes and response schemas.

Given a loaded model and tokenized texts, return the JSON-able result objects exactly as the HTTP
routes build them (``service.api.results``), plus what ``--eval`` needs to compare a record's gold
annotation with its result. The runner, I/O, sharding and evaluation do not know the tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.api.common import check_texts
from service.api.results import classify_results, entity_results, posture_results
from service.bundle import BundleError
from service.errors import ServiceError
from service.ner.pipeline import NerPipeline
from service.registry import LoadedModel, ModelRegistry
from service.runtime.batcher import Prepared
from service.runtime.family import RequestOptions, Runtime
from service.settings import Settings
from service.text.tokenizer import words_of

# One gold or predicted unit: (class, start, end); for documents start = end = 0.
Unit = tuple[str, int, int]

# Per task: the route's result objects for a runtime's predictions (labels, return_scores), and
# the key of the predicted classes in them (None: entities).
RESULTS: dict[str, tuple[Callable[[Any, list[str], bool], list[Any]], str | None]] = {
    "ner": (lambda prediction, labels, scores: entity_results(prediction), None),
    "postures": (posture_results, "postures"),
    "classify": (classify_results, "labels"),
}


class BadRecord(ValueError):
    """A record the model cannot score; the message is the reason written to the error file."""


@dataclass
class BatchModel:
    """One loaded bundle, seen as: text -> prepared -> result object (the route's, as JSON)."""

    loaded: LoadedModel
    settings: Settings
    top_k: int | None = None
    return_scores: bool = False

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return self.loaded.manifest.version

    @property
    def task(self) -> str:
        return self.loaded.manifest.task

    @property
    def gold_field(self) -> str:
        """Where a record keeps its gold annotation for ``--eval``."""
        return "entities" if self.task == "ner" else "labels"

    def prepare(self, text: str) -> Prepared:
        """Check the text against the service's limits and tokenize it (raises BadRecord)."""
        runtime = self._runtime()
        try:
            check_texts([text], True, 1, runtime.max_chars, allow_blank=False)
        except ServiceError as exc:
            raise BadRecord(exc.detail.message) from exc
        prepared: Prepared = runtime.prepare([text], RequestOptions(top_k=self.top_k))
        return prepared

    def run(self, items: list[Any]) -> list[dict[str, Any]]:
        """One runtime call for all items (each one text); the route's result object for each."""
        build, _ = RESULTS[self.task]
        labels = self.loaded.manifest.labels
        return [
            build(p, labels, self.return_scores)[0].model_dump(mode="json")
            for p in self._runtime().run_prepared(items)
        ]

    def _runtime(self) -> Runtime[Any, Any]:
        runtime = self.loaded.runtime
        if runtime is None:
            raise BundleError(f"model {self.name} is not loaded")
        return runtime

    # --- evaluation ----------------------------------------------------------------------------

    def eval_classes(self) -> list[str] | None:
        """Classes macro-F1 averages over: the model's postures; None for NER (seqeval: the
        entity types seen in gold or predictions)."""
        return None if self.task == "ner" else list(self.loaded.manifest.labels)

    def eval_units(
        self, text: str, gold: Any, result: dict[str, Any]
    ) -> tuple[set[Unit], set[Unit]]:
        """(gold units, predicted units) of one record; raises BadRecord on malformed gold.

        NER follows the training build (``default_models/evaluation.py``): gold and predicted
        spans become BIO tags over the service's words, entities are read back with seqeval's
        rules, so a unit is (type, first word, last word).
        """
        if self.task != "ner":
            if not isinstance(gold, list) or not all(isinstance(x, str) for x in gold):
                raise BadRecord("labels must be a list of strings")
            known = set(self.loaded.manifest.labels)
            key = RESULTS[self.task][1]
            return {(g, 0, 0) for g in gold if g in known}, {
                (p["label"], 0, 0) for p in result[str(key)]
            }
        try:
            gold_spans = [(int(e["start"]), int(e["end"]), str(e["label"])) for e in gold]
        except (TypeError, KeyError, ValueError) as exc:
            raise BadRecord("entities must be a list of {start, end, label}") from exc
        runtime = self._runtime()
        assert isinstance(runtime, NerPipeline)
        (encoded,) = runtime.tokenizer.encode_batch([text])
        starts = [int(s) for s in words_of(encoded).char_start]
        predicted = [(e["start"], e["end"], e["label"]) for e in result["entities"]]
        return _bio_entities(_bio_tags(starts, gold_spans)), _bio_entities(
            _bio_tags(starts, predicted)
        )


def load_model(
    settings: Settings, name: str | None, top_k: int | None = None, return_scores: bool = False
) -> BatchModel:
    """Verify, load, self-check and warm up one bundle exactly as the service does."""
    registry = ModelRegistry(settings)
    registry.discover()
    if name is None and len(registry.models) > 1:
        raise BundleError(
            f"several bundles in {settings.bundles_dir}: choose one with --model "
            f"({', '.join(sorted(registry.models))})"
        )
    registry.load()
    if not registry.ready:
        raise BundleError(registry.load_error or "the model did not load")
    registry.close()  # the HTTP batcher's worker thread is not used here
    (loaded,) = registry.models.values()
    return BatchModel(loaded, settings, top_k, return_scores)


def _bio_tags(starts: list[int], spans: list[tuple[int, int, str]]) -> list[str]:
    """Words whose first character lies in a span get B-/I- of its label (later spans win)."""
    tags = ["O"] * len(starts)
    for begin, end, label in spans:
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{label}"
    return tags


def _bio_entities(tags: list[str]) -> set[Unit]:
    """seqeval 1.2.2 ``get_entities`` (default mode) for B/I/O tags: an I- after O or after
    another type starts an entity; a type change or B- ends one."""
    found: set[Unit] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, kind = chunk[0], chunk[1:].split("-", maxsplit=1)[-1] or "_"
        ends = (prev_tag in "BI" and tag in "BO") or (prev_tag != "O" and prev_type != kind)
        if ends:
            found.add((prev_type, begin, i - 1))
        if tag == "B" or (prev_tag == "O" and tag == "I") or (tag != "O" and prev_type != kind):
            begin = i
        prev_tag, prev_type = tag, kind
    return found
