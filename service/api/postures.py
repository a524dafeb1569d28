"""``POST /v1/postures``: procedural postures of (long) legal documents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.common import check_texts, count_rejection, registry_of, run_model
from service.api.schemas import (
    DocumentPostures,
    ModelRef,
    PostureOut,
    PosturesRequest,
    PosturesResponse,
)
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
        model,
        texts,
        pipeline,
        lambda: pipeline.prepare(texts, body.top_k),
        "text" if body.text is not None else "texts",
        settings.max_request_tokens,
    )
    labels = model.manifest.labels
    return PosturesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=[
            DocumentPostures(
                postures=[PostureOut(**vars(p)) for p in found],
                windows=windows,
                scores=dict(zip(labels, probs.tolist(), strict=True))
                if body.return_scores
                else None,
            )
            for found, probs, windows in zip(
                prediction.postures, prediction.probabilities, prediction.windows, strict=True
            )
        ],
    )
