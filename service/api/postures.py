"""``POST /v1/postures``: procedural postures of (long) legal documents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.common import check_texts, count_rejection, registry_of, run_model
from service.api.results import posture_results
from service.api.schemas import ModelRef, PosturesRequest, PosturesResponse
from service.errors import ERROR_RESPONSES, ServiceError

router = APIRouter()


@router.post(
    "/v1/postures",
    response_model=PosturesResponse,
    responses=ERROR_RESPONSES,
    summary="Calibrated multi-label postures for one or many documents",
)
async def postures(body: PosturesRequest, request: Request) -> PosturesResponse:
    registry = registry_of(request)
    model, pipeline = registry.postures(body.model)
    texts = body.all_texts()
    settings = registry.settings
    try:
        check_texts(
            texts, body.text is not None, settings.max_texts, settings.max_document_chars, False
        )
    except ServiceError as exc:
        count_rejection(model, exc)
        raise
    prediction = await run_model(
        model, texts, pipeline, lambda: pipeline.prepare(texts, body.top_k)
    )
    return PosturesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=posture_results(prediction, model.manifest.labels, body.return_scores),
    )
