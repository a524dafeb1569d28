"""Optional API-key authentication: an ASGI middleware in front of every route but the probes.

Keys come from ``INFER_API_KEYS`` and/or ``INFER_API_KEYS_FILE``; with none configured the
middleware is not installed at all. A presented key is compared with ``hmac.compare_digest``
against every configured key (no early exit), so timing does not reveal which key or how much of
one matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ErrorBody, Unauthorized, error_response
from service.settings import Settings

# The Open Inference Protocol's probes (service.protocols.v2) are probes too.
PROBES = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
METRICS = "/metrics"
SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def load_api_keys(settings: Settings) -> list[bytes]:
    """Keys from the settings and the key file; a malformed key stops start-up."""
    keys = [key.get_secret_value() for key in settings.api_keys]
    if settings.api_keys_file is not None:
        try:
            lines = settings.api_keys_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"INFER_API_KEYS_FILE: cannot read {settings.api_keys_file}") from exc
        # Stripped before the comment test: an indented "#retired-key" is a comment, not a key.
        stripped = (line.strip() for line in lines)
        keys += [line for line in stripped if line and not line.startswith("#")]
    for i, key in enumerate(keys):
        if not key or any(c.isspace() for c in key) or not key.isprintable():
            raise ValueError(f"API key #{i + 1} is empty or holds whitespace/control characters")
    return [key.encode("utf-8") for key in keys]


def open_paths(settings: Settings) -> frozenset[str]:
    """Paths that never need a key: the probes, and /metrics unless INFER_METRICS_AUTH."""
    return PROBES if settings.metrics_auth else PROBES | {METRICS}


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The key from ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, if either is there."""
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
    return None


def key_matches(candidate: bytes, keys: list[bytes]) -> bool:
    """Constant-time over every key: all are compared even after a match."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


class ApiKeyAuth:
    """401 JSON (``unauthorized``) for requests without a valid key, before the body is read."""

    def __init__(self, app: ASGIApp, keys: list[bytes], open_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
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
