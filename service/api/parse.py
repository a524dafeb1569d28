"""``POST /v1/parse``: intent and entities of chat utterances in one round trip.

The configured intent model (a single-label classifier) and NER model run concurrently, each on
its own worker and batcher, so a parse costs about the slower of the two, not their sum. A bundle
of the ``parse`` route (e.g. a joint bundle: one encoder, several heads) answers intent, entities
and its other sequence heads alone, from one pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from families.classify.runtime import ClassPrediction
from families.ner.options import EntityFilter
from families.ner.results import entity_results
from families.ner.runtime import NerPrediction
from service.api.common import registry_of
from service.api.entities import entity_filter
from service.api.schemas import (
    ClassOut,
    HeadOut,
    IntentOut,
    ModelRef,
    ParsedText,
    ParseRequest,
    ParseResponse,
)
from service.dataplane import infer
from service.errors import ERROR_RESPONSES, InvalidInput, ModelNotFound, NotReady
from service.registry import LoadedModel, ModelRegistry
from service.runtime.family import RequestOptions, SequenceHeads

router = APIRouter()


def intent_model(registry: ModelRegistry) -> LoadedModel:
    """``INFER_PARSE_INTENT_MODEL``, or the only loaded single-label classifier."""
    if not registry.ready:
        raise NotReady(registry.load_error or "models are still loading")
    name = registry.settings.parse_intent_model
    if name is not None:
        model = configured(registry, "classify", name, "INFER_PARSE_INTENT_MODEL")
        if model.manifest.head != "single-label":
            raise InvalidInput(
                f"INFER_PARSE_INTENT_MODEL names {name!r}, a {model.manifest.head} classifier; "
                "/v1/parse needs a single-label (intent) classifier"
            )
        return model
    candidates = [
        m
        for m in registry.serving_models().values()
        if m.manifest.task in registry.route_tasks.get("classify", ())
        and m.manifest.head == "single-label"
    ]
    if not candidates:
        raise ModelNotFound(
            "no single-label (intent) classifier is loaded; /v1/parse needs one "
            "(set INFER_PARSE_INTENT_MODEL to its bundle name)"
        )
    if len(candidates) > 1:
        names = sorted(m.name for m in candidates)
        raise InvalidInput(
            f"several intent classifiers are loaded ({names}); set INFER_PARSE_INTENT_MODEL"
        )
    return registry.get("classify", candidates[0].name)  # its routed version


def alone_model(registry: ModelRegistry, name: str | None) -> LoadedModel | None:
    """The bundle that answers alone (a bundle of the ``parse`` route): the request's ``model``,
    ``INFER_PARSE_INTENT_MODEL`` when it names one, or, with no setting and no intent classifier
    loaded, the only one; else None (the intent + NER pair answers)."""
    if name is not None:
        return registry.get("parse", name)
    if not registry.ready:
        raise NotReady(registry.load_error or "models are still loading")
    alone = registry.route_tasks.get("parse", ())
    configured_name = registry.settings.parse_intent_model
    if configured_name is not None:
        model = registry.models.get(configured_name)
        if model is None or model.manifest.task not in alone:
            return None
        return registry.get("parse", model.name)  # its routed version
    loaded = list(registry.serving_models().values())
    classifiers = registry.route_tasks.get("classify", ())
    if any(
        m.manifest.task in classifiers
        and m.manifest.task not in alone
        and m.manifest.head == "single-label"
        for m in loaded
    ):
        return None
    candidates = [m for m in loaded if m.manifest.task in alone]
    return registry.get("parse", candidates[0].name) if len(candidates) == 1 else None


def ner_model(registry: ModelRegistry) -> LoadedModel:
    """``INFER_PARSE_NER_MODEL``, or the only loaded NER model."""
    name = registry.settings.parse_ner_model
    if name is None:
        try:
            return registry.get("ner", None)
        except (ModelNotFound, InvalidInput) as exc:
            raise type(exc)(f"{exc}; /v1/parse uses INFER_PARSE_NER_MODEL") from exc
    return configured(registry, "ner", name, "INFER_PARSE_NER_MODEL")


def configured(registry: ModelRegistry, route: str, name: str, setting: str) -> LoadedModel:
    """The model a setting names, with the setting in the message when it is not loaded."""
    try:
        return registry.get(route, name)
    except ModelNotFound as exc:
        raise ModelNotFound(f"{setting}={name!r}: {exc}") from exc


async def _both(
    intent: Coroutine[Any, Any, tuple[LoadedModel, ClassPrediction]],
    entities: Coroutine[Any, Any, tuple[LoadedModel, NerPrediction]],
) -> tuple[tuple[LoadedModel, ClassPrediction], tuple[LoadedModel, NerPrediction]]:
    """Both requests at once; if one fails, the other is cancelled (its queued work dropped)."""
    tasks = (asyncio.ensure_future(intent), asyncio.ensure_future(entities))
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return tasks[0].result(), tasks[1].result()


def ranked(
    probabilities: np.ndarray[Any, Any], labels: list[str], k: int | None
) -> list[IntentOut]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [IntentOut(name=labels[i], confidence=float(probabilities[i])) for i in order]


def parsed_alone(
    prediction: NerPrediction,
    runtime: SequenceHeads,
    top_k: int | None,
    keep: EntityFilter | None = None,
) -> list[ParsedText]:
    """One entry per text from a bundle that answers alone: its intent head as intent and
    ranking, its entities, every other sequence head by name."""
    intent = runtime.head_prediction(prediction, runtime.intent_head)
    others = {
        name: runtime.head_prediction(prediction, name)
        for name in runtime.head_kinds()
        if name != runtime.intent_head
    }
    labels = runtime.head_labels(runtime.intent_head)
    results = []
    for i, entities in enumerate(entity_results(prediction, keep)):
        found = intent.labels[i]
        results.append(
            ParsedText(
                intent=IntentOut(name=found[0].label, confidence=found[0].probability)
                if found
                else None,
                ranking=ranked(intent.probabilities[i], labels, top_k),
                entities=entities.entities,
                heads={
                    name: HeadOut(
                        labels=[ClassOut(**vars(c)) for c in head.labels[i]],
                        ranking=ranked(head.probabilities[i], runtime.head_labels(name), top_k),
                    )
                    for name, head in others.items()
                },
            )
        )
    return results


@router.post(
    "/v1/parse",
    response_model=ParseResponse,
    responses=ERROR_RESPONSES,
    summary="Intent and entities of chat utterances (intent and NER models run concurrently)",
)
async def parse(body: ParseRequest, request: Request) -> ParseResponse:
    registry = registry_of(request)
    texts = body.all_texts()
    single = body.text is not None
    alone = alone_model(registry, body.model)
    if alone is not None:  # one bundle, one pass answers every head
        model, prediction = await infer(
            registry, "parse", alone, texts, single, RequestOptions(), NerPrediction
        )
        runtime = model.runtime
        if not isinstance(runtime, SequenceHeads):
            raise TypeError(f"{model.name} serves /v1/parse but has no sequence heads")
        ref = ModelRef(name=model.name, version=model.manifest.version)
        keep = entity_filter(model, body.labels, body.min_score)
        return ParseResponse(
            intent_model=ref,
            ner_model=ref,
            results=parsed_alone(prediction, runtime, body.top_k, keep),
        )
    intents, tagger = intent_model(registry), ner_model(registry)
    keep = entity_filter(tagger, body.labels, body.min_score)
    (_, classes), (_, tagged) = await _both(
        infer(registry, "classify", intents, texts, single, RequestOptions(), ClassPrediction),
        infer(registry, "ner", tagger, texts, single, RequestOptions(), NerPrediction),
    )
    labels = intents.manifest.labels
    results = [
        ParsedText(
            intent=IntentOut(name=found[0].label, confidence=found[0].probability)
            if found
            else None,
            ranking=ranked(probs, labels, body.top_k),
            entities=entities.entities,
        )
        for found, probs, entities in zip(
            classes.labels, classes.probabilities, entity_results(tagged, keep), strict=True
        )
    ]
    return ParseResponse(
        intent_model=ModelRef(name=intents.name, version=intents.manifest.version),
        ner_model=ModelRef(name=tagger.name, version=tagger.manifest.version),
        results=results,
    )
