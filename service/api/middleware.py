"""ASGI middleware: body-size limit (before any parsing), request metrics, the drain gate."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Draining, ErrorDetail, error_response
from service.metrics import IN_FLIGHT, REQUEST_LATENCY
from service.registry import ModelRegistry


class BodyLimit:
    """Buffer the body up to ``max_bytes``; answer 413 beyond it, whatever Content-Length says."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = ErrorDetail(
            type="payload_too_large",
            message=f"request body exceeds {self.max_bytes} bytes",
            field="body",
            limit=self.max_bytes,
        )
        await error_response(413, detail, {"Connection": "close"})(scope, receive, send)


class RequestMetrics:
    """Latency histogram by route template (not raw path: bounded label values) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            IN_FLIGHT.dec()
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUEST_LATENCY.labels(path, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )


class DrainGate:
    """While draining after SIGTERM: /readyz answers 503 ``draining``; other requests are served
    (the load balancer may still route a few here) but with ``Connection: close``, so clients
    reconnect to another replica instead of keeping a connection that is about to close."""

    def __init__(self, app: ASGIApp, registry: ModelRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.registry.draining:
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/readyz":
            detail = Draining(
                "shutting down (SIGTERM): send new requests to another replica"
            ).detail
            await error_response(503, detail, {"Connection": "close"})(scope, receive, send)
            return

        async def close_after(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, close_after)
