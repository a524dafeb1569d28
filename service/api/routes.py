"""HTTP routes: validate limits, pick the model, hand texts to its pipeline off the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.api.schemas import (
    EntitiesRequest,
    EntitiesResponse,
    EntityOut,
    ModelCard,
    ModelRef,
    ModelsResponse,
    Status,
    TextEntities,
)
from service.errors import (
    ERROR_RESPONSES,
    ErrorBody,
    InvalidInput,
    LimitExceeded,
    NotReady,
    ServiceError,
)
from service.metrics import FAILURES, INFERENCE_LATENCY, STAGE_LATENCY, TEXTS, TOKENS, WINDOWS
from service.ner.pipeline import NerPrediction
from service.registry import LoadedModel, ModelRegistry
from service.settings import Settings

router = APIRouter()


def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def check_texts(texts: list[str], single: bool, settings: Settings) -> None:
    """Enforce size limits and text sanity before any tokenization happens."""
    if not single and not texts:
        raise InvalidInput("texts must hold at least one text", field="texts")
    if len(texts) > settings.max_texts:
        raise LimitExceeded(
            f"{len(texts)} texts in one request; the limit is {settings.max_texts}",
            field="texts",
            limit=settings.max_texts,
        )
    for i, text in enumerate(texts):
        where = "text" if single else f"texts[{i}]"
        if len(text) > settings.max_text_chars:
            raise LimitExceeded(
                f"{where} has {len(text)} characters; the limit is {settings.max_text_chars}",
                field=where,
                limit=settings.max_text_chars,
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"{where} is not valid Unicode ({exc.reason})", field=where) from exc


@router.post(
    "/v1/entities",
    response_model=EntitiesResponse,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorBody, "description": "Unknown model"}},
    summary="Named entities with character offsets for one or many texts",
)
async def entities(body: EntitiesRequest, request: Request) -> EntitiesResponse:
    registry = _registry(request)
    texts = body.all_texts()
    model = registry.get("ner", body.model)
    try:
        check_texts(texts, body.text is not None, registry.settings)
        prediction = await _predict(model, texts)
    except ServiceError as exc:
        FAILURES.labels(model.name, exc.type).inc()
        raise
    return EntitiesResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        results=[
            TextEntities(entities=[EntityOut(**vars(e)) for e in found])
            for found in prediction.entities
        ],
    )


async def _predict(model: LoadedModel, texts: list[str]) -> NerPrediction:
    assert model.pipeline is not None
    pipeline = model.pipeline
    async with model.lock:
        try:
            prediction = await run_in_threadpool(pipeline.predict, texts)
        except Exception as exc:
            FAILURES.labels(model.name, type(exc).__name__).inc()
            raise
    for stage, seconds in prediction.timings.items():
        STAGE_LATENCY.labels(model.name, stage).observe(seconds)
    INFERENCE_LATENCY.labels(model.name).observe(sum(prediction.timings.values()))
    TEXTS.labels(model.name).inc(len(texts))
    TOKENS.labels(model.name).inc(prediction.tokens)
    WINDOWS.labels(model.name).inc(prediction.windows)
    return prediction


@router.get("/v1/models", response_model=ModelsResponse, summary="Metadata of the loaded bundles")
async def models(request: Request) -> ModelsResponse:
    cards = []
    for model in _registry(request).models.values():
        m = model.manifest
        cards.append(
            ModelCard(
                name=m.name,
                version=m.version,
                task=m.task,
                labels=m.labels,
                max_length=m.tokenizer.max_length,
                stride=m.tokenizer.stride,
                onnx_sha256=m.onnx.sha256,
                opset=m.onnx.opset,
                provider=model.pipeline.session.provider if model.pipeline else None,
                constrain_transitions=m.ner.constrain_transitions,
                parity=m.parity.model_dump(),
                export=m.export.model_dump(),
            )
        )
    return ModelsResponse(models=cards)


@router.get("/healthz", response_model=Status, summary="Liveness: the process answers")
async def healthz() -> Status:
    return Status(status="ok")


@router.get(
    "/readyz",
    response_model=Status,
    responses={503: {"model": ErrorBody, "description": "Still loading, or loading failed"}},
    summary="Readiness: every bundle loaded and warmed up",
)
async def readyz(request: Request) -> Status:
    registry = _registry(request)
    if not registry.ready:
        raise NotReady(registry.load_error or "models are still loading")
    return Status(status="ready", detail=", ".join(sorted(registry.models)))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
