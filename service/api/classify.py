"""``POST /v1/classify``: classes of texts from any sequence-classifier bundle (multi-label with
per-class thresholds, single-label with an optional abstain threshold; posture bundles too)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.classify.results import classify_results
from families.classify.runtime import ClassPrediction
from service.api.common import registry_of
from service.api.schemas import ClassifyRequest, ClassifyResponse, ModelRef
from service.dataplane import infer
from service.errors import ERROR_RESPONSES
from service.runtime.family import RequestOptions

router = APIRouter()


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    summary="Classes (multi-label or single-label) for one or many texts",
)
async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
    texts = body.all_texts()
    model, prediction = await infer(
        registry_of(request),
        "classify",
        body.model,
        texts,
        body.text is not None,
        RequestOptions(top_k=body.top_k, truncation=body.truncation),
        ClassPrediction,
    )
    return ClassifyResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        head="single-label" if model.manifest.head == "single-label" else "multi-label",
        results=classify_results(prediction, model.manifest.labels, body.return_scores),
    )
