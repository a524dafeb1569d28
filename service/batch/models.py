"""The batch command's only coupling to the model runtimes and result objects.

Given a loaded model and tokenized texts, return the JSON-able result objects exactly as the HTTP
routes build them (each family's ``results.py``), plus what ``--eval`` needs to compare a record's
gold annotation with its result; both come from the model's family (``ServingFamily.batch``). The
runner, I/O, sharding and evaluation do not know the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from families.ner.options import EntityFilter, entity_types
from families.ner.runtime import NerPrediction
from service.bundle import BundleError
from service.dataplane import check_texts
from service.errors import ServiceError
from service.redaction import Mode, Placeholders, Redactor
from service.redaction_results import redacted_result
from service.registry import LoadedModel, ModelRegistry
from service.runtime.batcher import Prepared
from service.runtime.family import BadRecord as BadRecord
from service.runtime.family import (
    BatchRecords,
    RequestOptions,
    Runtime,
    ServingFamily,
    phases_of,
)
from service.runtime.family import Unit as Unit
from service.settings import Settings


@dataclass
class BatchModel:
    """One loaded bundle, seen as: text -> prepared -> result object (the route's, as JSON)."""

    loaded: LoadedModel
    settings: Settings
    family: ServingFamily
    top_k: int | None = None
    return_scores: bool = False
    redaction: tuple[Redactor, EntityFilter] | None = None  # --redact: /v1/redact's result

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
    def records(self) -> BatchRecords:
        return self.family.batch

    @property
    def gold_field(self) -> str:
        """Where a record keeps its gold annotation for ``--eval``."""
        return self.records.gold_field

    def prepare(self, text: str) -> Prepared:
        """Check the text against the service's limits and tokenize it (raises BadRecord)."""
        runtime = self._runtime()
        try:
            check_texts([text], True, 1, runtime.max_chars, allow_blank=False)
        except ServiceError as exc:
            raise BadRecord(exc.detail.message) from exc
        prepared: Prepared = runtime.prepare([text], RequestOptions(top_k=self.top_k))
        return prepared

    def prepare_many(self, texts: list[str]) -> list[Prepared | BadRecord]:
        """``prepare`` of each text (a refused one: its BadRecord), tokenized in one call where
        the runtime can (``prepare_each``: the same items as one by one, from one call to the
        Rust tokenizer, which runs it on every core)."""
        runtime = self._runtime()
        out: dict[int, Prepared | BadRecord] = {}
        for i, text in enumerate(texts):
            try:
                check_texts([text], True, 1, runtime.max_chars, allow_blank=False)
            except ServiceError as exc:
                out[i] = BadRecord(exc.detail.message)
        valid = [i for i in range(len(texts)) if i not in out]
        each = getattr(runtime, "prepare_each", None)
        prepared: list[Prepared] | None = None
        if each is not None and valid:
            try:
                prepared = each([texts[i] for i in valid], RequestOptions(top_k=self.top_k))
            except Exception:  # one text the runtime refuses: found one by one below
                prepared = None
        for n, i in enumerate(valid):
            if prepared is not None:
                out[i] = prepared[n]
                continue
            try:
                out[i] = self.prepare(texts[i])
            except BadRecord as exc:
                out[i] = exc
        return [out[i] for i in range(len(texts))]

    def run(self, items: list[Any]) -> list[dict[str, Any]]:
        """One runtime call for all items (each one text); the route's result object for each."""
        return self.finish(items, self.score(items))

    def score(self, items: list[Any]) -> Any:
        """The ONNX half of ``run`` where the runtime has two (``TwoPhases``), else all of it:
        the runner decodes and writes one batch (``finish``) while the next one's ONNX calls
        run."""
        runtime = self._runtime()
        phases = phases_of(runtime)
        return runtime.run_prepared(items) if phases is None else phases[0](items)

    def finish(self, items: list[Any], scored: Any) -> list[dict[str, Any]]:
        """The result objects of ``items`` from what ``score`` returned for them."""
        phases = phases_of(self._runtime())
        predictions = scored if phases is None else phases[1](items, scored)
        if self.redaction is not None:
            return [self._redacted(item, p) for item, p in zip(items, predictions, strict=True)]
        labels = self.loaded.manifest.labels
        return [self.records.result(p, labels, self.return_scores) for p in predictions]

    def _redacted(self, item: Any, prediction: Any) -> dict[str, Any]:
        """What ``/v1/redact`` answers for this one-text request (placeholders per record)."""
        assert self.redaction is not None
        if not isinstance(prediction, NerPrediction):
            raise TypeError(f"--redact needs NER predictions, not {type(prediction).__name__}")
        redactor, keep = self.redaction
        counts = (prediction.text_tokens[0], prediction.text_windows[0], prediction.truncated[0])
        result = redacted_result(
            redactor, item.texts[0], prediction.entities[0], keep, Placeholders(), self.name,
            *counts, self.loaded.manifest.version,
        )  # fmt: skip
        return result.model_dump(mode="json")

    def _runtime(self) -> Runtime[Any, Any]:
        runtime = self.loaded.runtime
        if runtime is None:
            raise BundleError(f"model {self.name} is not loaded")
        return runtime

    # --- evaluation ----------------------------------------------------------------------------

    def eval_classes(self) -> list[str] | None:
        """Classes macro-F1 averages over (a classifier's labels; None for NER: seqeval's entity
        types seen in gold or predictions)."""
        return self.records.eval_classes(list(self.loaded.manifest.labels))

    def eval_units(
        self, text: str, gold: Any, result: dict[str, Any]
    ) -> tuple[set[Unit], set[Unit]]:
        """(gold units, predicted units) of one record; raises BadRecord on malformed gold."""
        labels = list(self.loaded.manifest.labels)
        return self.records.eval_units(self._runtime(), labels, text, gold, result)


def redaction_for(
    model: BatchModel, mode: str, labels: list[str] | None, min_score: float | None
) -> tuple[Redactor, EntityFilter]:
    """``--redact`` options, refused (ValueError: exit 2) as the route refuses them (422): the
    model must be one ``/v1/redact`` serves (a family on the ``ner`` route)."""
    if model.family.route != "ner":
        raise ValueError(f"--redact needs a NER model; {model.name} is {model.task}")
    types = entity_types(model.loaded.manifest.labels)
    redactor = Redactor(cast(Mode, mode), model.settings.redact_key())
    return redactor, EntityFilter.build(labels, min_score, types)


def load_model(
    settings: Settings,
    name: str | None,
    top_k: int | None = None,
    return_scores: bool = False,
    registry: ModelRegistry | None = None,
) -> BatchModel:
    """Verify, load, self-check and warm up one bundle exactly as the service does
    (``registry``: one with other families, e.g. a test's)."""
    registry = registry or ModelRegistry(settings)
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
    # A bundle that runs others (an ensemble) brings its members along; score the one asked for.
    wanted = settings.models or list(registry.models)
    loaded = registry.models[wanted[0]]
    family = registry.by_task[loaded.manifest.task]
    return BatchModel(loaded, settings, family, top_k, return_scores)
