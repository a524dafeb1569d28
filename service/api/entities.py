"""``POST /v1/entities``: named entities with character offsets."""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.ner.options import (
    EntityFilter,
    JoinedWords,
    OptionError,
    entity_types,
    join_words,
)
from families.ner.results import entity_results
from families.ner.runtime import NerPrediction
from service.api.common import registry_of
from service.api.schemas import EntitiesRequest, EntitiesResponse, ModelRef, TextEntities
from service.dataplane import infer
from service.errors import ERROR_RESPONSES, InvalidInput
from service.registry import LoadedModel
from service.runtime.family import RequestOptions

router = APIRouter()


@router.post(
    "/v1/entities",
    response_model=EntitiesResponse,
    responses=ERROR_RESPONSES,
    summary="Named entities with character offsets for one or many texts",
)
async def entities(body: EntitiesRequest, request: Request) -> EntitiesResponse:
    joined = joined_words(body.words)
    texts = [j.text for j in joined] if joined is not None else body.all_texts()
    registry = registry_of(request)
    found = registry.get("ner", body.model)  # the version is picked once, here
    keep = entity_filter(found, body.labels, body.min_score)
    model, prediction = await infer(
        registry,
        "ner",
        found,
        texts,
        body.text is not None,
        RequestOptions(alternatives=body.return_alternatives, truncation=body.truncation),
        NerPrediction,
    )
    results = entity_results(prediction, keep)
    if joined is not None:
        results = [with_word_ranges(r, j) for r, j in zip(results, joined, strict=True)]
    return EntitiesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version), results=results
    )


def joined_words(words: list[list[str]] | None) -> list[JoinedWords] | None:
    """Pre-split input joined by the documented rule (families.ner.options), or None."""
    if words is None:
        return None
    try:
        return [join_words(w, f"words[{i}]") for i, w in enumerate(words)]
    except OptionError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc


def with_word_ranges(result: TextEntities, joined: JoinedWords) -> TextEntities:
    entities = []
    for e in result.entities:
        first, after = joined.word_range(e.start, e.end)
        entities.append(e.model_copy(update={"word_start": first, "word_end": after}))
    return result.model_copy(update={"entities": entities})


def entity_filter(
    model: LoadedModel, labels: list[str] | None, min_score: float | dict[str, float] | None
) -> EntityFilter:
    """The request's entity filters, checked against the model's types before inference."""
    try:
        return EntityFilter.build(labels, min_score, entity_types(model.manifest.labels))
    except OptionError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
