"""One error hierarchy, one JSON shape, one status map for everything the API can refuse.

Every error body is ``{"error": {"type", "message", "field"?, "limit"?}}`` so clients can act on
the field and the limit without parsing prose.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.observability.request_context import annotate

log = logging.getLogger("service.errors")


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None
    limit: int | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ServiceError(Exception):
    status = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        field: str | None = None,
        limit: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(type=self.type, message=message, field=field, limit=limit)
        self.headers = dict(headers or {})


class InvalidInput(ServiceError):
    status, type = 422, "invalid_input"


class LimitExceeded(ServiceError):
    status, type = 422, "limit_exceeded"


class InvalidJson(ServiceError):
    """The body is not UTF-8 JSON."""

    status, type = 400, "malformed_json"


class PayloadTooLarge(ServiceError):
    status, type = 413, "payload_too_large"


class ModelNotFound(ServiceError):
    status, type = 404, "model_not_found"


class NotReady(ServiceError):
    status, type = 503, "not_ready"


class Overloaded(ServiceError):
    """The model's queue is full; ``Retry-After`` says when to try again."""

    status, type = 429, "overloaded"


class DeadlineExceeded(ServiceError):
    status, type = 504, "deadline_exceeded"


class Draining(ServiceError):
    status, type = 503, "draining"


class Unauthorized(ServiceError):
    status, type = 401, "unauthorized"


class RequestTimeout(ServiceError):
    status, type = 408, "request_timeout"


# What FastAPI says when the body parser fails with anything but a JSONDecodeError (nesting too
# deep, invalid UTF-8, an integer over Python's digit limit, a compressed body...).
_BODY_PARSE_FAILURE = "There was an error parsing the body"


def error_response(
    status: int, detail: ErrorDetail, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    annotate(error=detail.type)  # the access log line names the error type
    return JSONResponse(ErrorBody(error=detail).model_dump(exclude_none=True), status, headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


async def _on_service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.detail, exc.headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        detail = ErrorDetail(
            type="malformed_json", message=f"request body is not valid JSON: {first.get('msg')}"
        )
        return error_response(400, detail)
    field = _field_path(tuple(first.get("loc", ())))
    detail = ErrorDetail(type="invalid_input", message=f"{field}: {first.get('msg')}", field=field)
    return error_response(422, detail)


def _flat(routes: list[Any]) -> list[Any]:
    """Routes with the routers FastAPI includes (``_IncludedRouter``, no prefix here) opened."""
    flat = []
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        flat.extend(_flat(inner) if inner is not None else [route])
    return flat


def _allowed_methods(request: Request) -> str | None:
    """Every method some route of this path answers (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in _flat(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILURE:
        cause = exc.__cause__
        reason = f"{type(cause).__name__}: {cause}"[:200] if cause else "unreadable"
        message = f"request body is not valid JSON (UTF-8): {reason}"
        return error_response(400, ErrorDetail(type="malformed_json", message=message))
    kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return error_response(exc.status_code, ErrorDetail(type=kind, message=str(exc.detail)), headers)


async def _on_unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    detail = ErrorDetail(type="internal_error", message=f"internal error ({type(exc).__name__})")
    return error_response(500, detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)


# Documented on every route that takes a body, so the OpenAPI schema lists what it can return.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON"},
    408: {"model": ErrorBody, "description": "The body did not arrive within the body timeout"},
    404: {"model": ErrorBody, "description": "No loaded model of that name for this task"},
    413: {"model": ErrorBody, "description": "Body larger than the configured limit"},
    422: {
        "model": ErrorBody,
        "description": "Invalid field or limit exceeded (names field and limit)",
    },
    500: {"model": ErrorBody, "description": "Unexpected server error (the worker keeps running)"},
    429: {
        "model": ErrorBody,
        "description": "The model's queue is full (overloaded); retry after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}},
    },
    503: {
        "model": ErrorBody,
        "description": "Models not loaded yet, shutting down, or too many connections",
    },
    504: {"model": ErrorBody, "description": "The request missed its deadline (queue + inference)"},
}
