"""Optional API-key authentication: an ASGI middleware in front of every route but the probes.

Keys come from ``INFER_API_KEYS`` and/or ``INFER_API_KEYS_FILE``; with none configured the
middleware is not installed at all. A presented key is compared with ``hmac.compare_digest``
against every configured key (no early exit), so timing does not reveal which key or how much of
one matched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ErrorBody, Unauthorized, error_response
from service.keys import key_matches as key_matches
from service.keys import load_api_keys as load_api_keys
from service.keys import presented_key as presented_key
from service.settings import Settings

# The Open Inference Protocol's probes (service.protocols.v2) are probes too.
PROBES = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
METRICS = "/metrics"
ADMIN_PREFIX = "/v1/admin/"
SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def open_paths(settings: Settings) -> frozenset[str]:
    """Paths that never need a key: the probes, and /metrics unless INFER_METRICS_AUTH."""
    return PROBES if settings.metrics_auth else PROBES | {METRICS}


class ApiKeyAuth:
    """401 JSON (``unauthorized``) for requests without a valid key, before the body is read."""

    def __init__(self, app: ASGIApp, keys: list[bytes], open_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the admin API checks its own keys (service.api.admin), never the inference keys
        admin = scope["type"] == "http" and scope["path"].startswith(ADMIN_PREFIX)
        if scope["type"] != "http" or scope["path"] in self.open_paths or admin:
            await self.app(scope, receive, send)
            return
        candidate = presented_key(scope["headers"])
        if candidate is not None and key_matches(candidate, self.keys):
            await self.app(scope, receive, send)
            return
        message = "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"
        if candidate is not None:
            message = "the API key is not valid"
        detail = Unauthorized(message).detail
        headers = {"WWW-Authenticate": 'Bearer realm="inference"'}
        await error_response(401, detail, headers)(scope, receive, send)


def document_auth(app: FastAPI, open_paths: frozenset[str]) -> None:
    """Add the security schemes and a 401 response to every protected operation's OpenAPI."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        # ErrorBody is in components already: the model routes document their errors with it.
        assert ErrorBody.__name__ in schema["components"]["schemas"]
        schema["components"]["securitySchemes"] = SCHEMES
        unauthorized = {
            "description": "Missing or invalid API key",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path, operations in schema.get("paths", {}).items():
            if path in open_paths:
                continue
            for operation in operations.values():
                operation["security"] = [{name: []} for name in SCHEMES]
                operation.setdefault("responses", {})["401"] = unauthorized
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
