"""Application factory: settings → registry → FastAPI app with routes, errors and middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from service.api import classify, entities, parse, postures, redact, system
from service.api.admin import admin_router
from service.api.auth import ApiKeyAuth, document_auth, load_api_keys, open_paths
from service.api.middleware import AnswerAtShutdown, BodyLimit, DrainGate, RequestMetrics
from service.errors import install_error_handlers
from service.keys import load_admin_keys
from service.metrics import READY
from service.observability.request_context import RequestContext
from service.protocols.v2 import grpc_server
from service.protocols.v2 import rest as v2_rest
from service.registry import ModelRegistry
from service.settings import Settings
from service.versions.caller import RequestHeaders
from service.versions.watcher import Watcher


class ServiceApp(FastAPI):
    """FastAPI with the request context (id, access log, span) outside even Starlette's error
    middleware, so a 500 carries ``X-Request-ID`` and is logged with it too."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContext(super().build_middleware_stack())


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = registry or ModelRegistry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.discover()  # a broken bundle stops start-up here, before traffic
        READY.set(0)
        loading = asyncio.create_task(asyncio.to_thread(registry.load))
        grpc = await grpc_server.start(settings, registry) if settings.grpc_enabled else None
        watch = asyncio.create_task(Watcher(registry).run()) if settings.watch else None
        yield
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if grpc is not None:  # HTTP has drained; gRPC calls get the same graceful time
            await grpc_server.stop(grpc, settings.graceful_timeout_seconds)
        # uvicorn gets here only after every connection ended (the drain): nothing is queued.
        await asyncio.shield(loading)
        await registry.shadow.stop()
        await asyncio.to_thread(registry.close)

    app = ServiceApp(
        title="NLP inference service",
        version="0.1.0",
        summary="Named entities (BERT-CRF) over ONNX Runtime, with exact character offsets.",
        lifespan=lifespan,
    )
    app.state.registry = registry
    for module in (entities, postures, classify, parse, redact, system, v2_rest):
        app.include_router(module.router)
    admin_keys = load_admin_keys(settings)
    if admin_keys:  # the admin API exists only with its own keys (else its paths are 404s)
        app.include_router(admin_router(admin_keys))
    install_error_handlers(app)
    # Outermost last: metrics see every answer; a bad key is refused before the body is read.
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(DrainGate, registry=registry)
    keys = load_api_keys(settings)
    if keys:
        app.add_middleware(ApiKeyAuth, keys=keys, open_paths=open_paths(settings))
        document_auth(app, open_paths(settings))
    app.add_middleware(AnswerAtShutdown)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestHeaders)  # sticky routing reads the caller's header
    return app
