"""``POST /v1/postures``: procedural postures of (long) legal documents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.classify.runtime import ClassPrediction
from families.postures.results import posture_results
from service.api.common import registry_of
from service.api.schemas import ModelRef, PosturesRequest, PosturesResponse
from service.dataplane import infer
from service.errors import ERROR_RESPONSES
from service.runtime.family import RequestOptions

router = APIRouter()


@router.post(
    "/v1/postures",
    response_model=PosturesResponse,
    responses=ERROR_RESPONSES,
    summary="Calibrated multi-label postures for one or many documents",
)
async def postures(body: PosturesRequest, request: Request) -> PosturesResponse:
    texts = body.all_texts()
    model, prediction = await infer(
        registry_of(request),
        "postures",
        body.model,
        texts,
        body.text is not None,
        RequestOptions(top_k=body.top_k, truncation=body.truncation),
        ClassPrediction,
    )
    return PosturesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=posture_results(prediction, model.manifest.labels, body.return_scores),
    )
