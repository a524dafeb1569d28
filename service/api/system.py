"""Operational routes: model metadata, liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.common import registry_of
from service.api.schemas import ModelCard, ModelsResponse, Status
from service.api.versions import version_state, version_states
from service.errors import ErrorBody, NotReady
from service.manifest import BundleManifest, ManifestBase
from service.registry import LoadedModel, ModelRegistry
from service.runtime.cpu_features import current_cpu

router = APIRouter()
VERSION_FIELDS = {"state", "reason", "role", "traffic_share", "memory_mb"}


def _card(registry: ModelRegistry, model: LoadedModel) -> ModelCard:
    """A bundle's card; the ONNX fields are null for a bundle without a graph of its own (a
    TF-IDF bundle, an ensemble: see its members' cards), whose settings its runtime's
    ``describe()`` gives in ``details``."""
    m = model.manifest
    onnx = m if isinstance(m, ManifestBase) and m.has_graph else None
    return ModelCard(
        name=m.name,
        version=m.version,
        task=m.task,
        labels=m.labels,
        max_length=onnx.tokenizer.max_length if onnx else None,
        stride=onnx.tokenizer.stride if onnx else None,
        onnx_sha256=onnx.onnx.sha256 if onnx else None,
        opset=onnx.onnx.opset if onnx else None,
        model_sha256=m.model_digest(),
        provider=model.runtime.session.provider if model.runtime else None,
        details=model.runtime.describe() if model.runtime else {},
        parity=m.parity.model_dump(),
        export=m.export.model_dump(),
        variant=onnx.variant.model_dump() if onnx and onnx.variant else None,
        selfcheck=model.selfcheck.model_dump() if model.selfcheck else None,
        automation=m.automation,
        **version_state(registry, model).model_dump(include=VERSION_FIELDS),
    )


@router.get("/v1/models", response_model=ModelsResponse, summary="Metadata of the loaded bundles")
async def models(request: Request) -> ModelsResponse:
    registry = registry_of(request)
    return ModelsResponse(
        cpu=current_cpu().model_dump(),
        models=[
            _card(registry, m)
            for m in registry.all_versions()
            if isinstance(m.manifest, BundleManifest)  # an unreadable one: in versions only
        ],
        versions=version_states(registry),
    )


@router.get("/healthz", response_model=Status, summary="Liveness: the process answers")
@router.head("/healthz", include_in_schema=False)  # probes and load balancers that use HEAD
async def healthz() -> Status:
    return Status(status="ok")


@router.get(
    "/readyz",
    response_model=Status,
    responses={503: {"model": ErrorBody, "description": "Still loading, or loading failed"}},
    summary="Readiness: every bundle loaded and warmed up",
)
@router.head("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Status:
    registry = registry_of(request)
    if not registry.ready:
        raise NotReady(registry.load_error or "models are still loading")
    if not registry.serving():  # a failing new version never gets here: its model has another
        idle = sorted(n for n, g in list(registry.groups.items()) if not g.ready())
        raise NotReady(f"no version of {idle} is ready")
    return Status(status="ready", detail=", ".join(sorted(registry.groups)))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
