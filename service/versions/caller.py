"""The current request's headers, for sticky routing: set by an outer ASGI middleware, read when
the registry picks a version (``ModelRegistry.get``) without threading headers through routes."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

_HEADERS: ContextVar[tuple[tuple[bytes, bytes], ...]] = ContextVar("request_headers", default=())


def header(name: str) -> str | None:
    """The value of the current request's header ``name`` (case-insensitive), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in _HEADERS.get():
        if key.lower() == wanted:
            return value.decode("latin-1").strip() or None
    return None


class RequestHeaders:
    """Makes each HTTP request's headers visible to :func:`header` while it is served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _HEADERS.set(tuple(scope.get("headers") or ()))
        try:
            await self.app(scope, receive, send)
        finally:
            _HEADERS.reset(token)
