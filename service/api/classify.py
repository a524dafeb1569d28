"""``POST /v1/classify``: classes of texts from any sequence-classifier bundle (multi-label with
per-class thresholds, single-label with an optional abstain threshold; posture bundles too), or
one sequence head of a bundle with several (``head``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.classify.results import classify_results
from families.classify.runtime import ClassPrediction
from service.api.common import registry_of
from service.api.schemas import ClassifyRequest, ClassifyResponse, ModelRef
from service.dataplane import infer
from service.errors import ERROR_RESPONSES, InvalidInput
from service.registry import LoadedModel
from service.runtime.family import RequestOptions, SequenceHeads

router = APIRouter()


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    summary="Classes (multi-label or single-label) for one or many texts",
)
async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
    texts = body.all_texts()
    registry = registry_of(request)
    found = registry.get("classify", body.model)
    options = RequestOptions(top_k=body.top_k, truncation=body.truncation)
    if isinstance(found.runtime, SequenceHeads):
        return await _one_head(request, found, found.runtime, body)
    if body.head is not None:
        raise InvalidInput(
            f"head applies to bundles with several sequence heads; {found.name} is a "
            f"{found.manifest.task} bundle",
            field="head",
        )
    model, prediction = await infer(
        registry, "classify", found, texts, body.text is not None, options, ClassPrediction
    )
    return ClassifyResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        head="single-label" if model.manifest.head == "single-label" else "multi-label",
        results=classify_results(prediction, model.manifest.labels, body.return_scores),
    )


async def _one_head(
    request: Request, found: LoadedModel, runtime: SequenceHeads, body: ClassifyRequest
) -> ClassifyResponse:
    """The request's head (default: the intent head) of a bundle with several."""
    kinds = runtime.head_kinds()
    head = runtime.intent_head if body.head is None else body.head
    if head not in kinds:
        raise InvalidInput(
            f"head {head!r} is not a sequence head of {found.name} (heads: {list(kinds)})",
            field="head",
        )
    texts = body.all_texts()
    options = RequestOptions(top_k=body.top_k, truncation=body.truncation)
    model, result = await infer(
        registry_of(request),
        "classify",
        found,
        texts,
        body.text is not None,
        options,
        runtime.result_type,
    )
    prediction = runtime.head_prediction(result, head)
    if not isinstance(prediction, ClassPrediction):
        raise TypeError(f"{model.name} head {head} answered {type(prediction).__name__}")
    return ClassifyResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        head=kinds[head],
        results=classify_results(prediction, runtime.head_labels(head), body.return_scores),
    )
