"""``POST /v1/entities``: named entities with character offsets."""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.ner.results import entity_results
from families.ner.runtime import NerPrediction
from service.api.common import registry_of
from service.api.schemas import EntitiesRequest, EntitiesResponse, ModelRef
from service.dataplane import infer
from service.errors import ERROR_RESPONSES
from service.runtime.family import RequestOptions

router = APIRouter()


@router.post(
    "/v1/entities",
    response_model=EntitiesResponse,
    responses=ERROR_RESPONSES,
    summary="Named entities with character offsets for one or many texts",
)
async def entities(body: EntitiesRequest, request: Request) -> EntitiesResponse:
    texts = body.all_texts()
    model, prediction = await infer(
        registry_of(request),
        "ner",
        body.model,
        texts,
        body.text is not None,
        RequestOptions(),
        NerPrediction,
    )
    return EntitiesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=entity_results(prediction),
    )
