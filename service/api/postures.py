"""``POST /v1/postures``: procedural postures of (long) legal documents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.common import infer, registry_of
from service.api.schemas import (
    DocumentPostures,
    ModelRef,
    PostureOut,
    PosturesRequest,
    PosturesResponse,
)
from service.errors import ERROR_RESPONSES
from service.postures.pipeline import PosturePrediction
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
        RequestOptions(top_k=body.top_k),
        PosturePrediction,
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
