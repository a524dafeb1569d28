"""``POST /v1/entities``: named entities with character offsets."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.common import check_texts, count_rejection, registry_of, run_model
from service.api.results import entity_results
from service.api.schemas import EntitiesRequest, EntitiesResponse, ModelRef
from service.errors import ERROR_RESPONSES, ServiceError

router = APIRouter()


@router.post(
    "/v1/entities",
    response_model=EntitiesResponse,
    responses=ERROR_RESPONSES,
    summary="Named entities with character offsets for one or many texts",
)
async def entities(body: EntitiesRequest, request: Request) -> EntitiesResponse:
    registry = registry_of(request)
    model, pipeline = registry.ner(body.model)
    texts = body.all_texts()
    settings = registry.settings
    try:
        check_texts(texts, body.text is not None, settings.max_texts, settings.max_text_chars, True)
    except ServiceError as exc:
        count_rejection(model, exc)
        raise
    prediction = await run_model(model, texts, pipeline, lambda: pipeline.prepare(texts))
    return EntitiesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=entity_results(prediction),
    )
