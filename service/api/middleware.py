"""ASGI middleware: body size and time limits (before any parsing), client-disconnect
cancellation, request metrics with bounded labels, the drain gate, JSON answers at shutdown."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (
    Draining,
    InvalidJson,
    PayloadTooLarge,
    RequestTimeout,
    error_response,
)
from service.metrics import IN_FLIGHT, REQUEST_LATENCY
from service.registry import ModelRegistry

# Set in the scope when the client went away before its answer: recorded as status 499.
CLIENT_GONE = "infer.client_gone"
# Methods recorded as themselves in metrics; anything else (any string a client sends) is
# "other", so a client cannot grow the label set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
CLIENT_CLOSED_STATUS = "499"  # nginx's convention for "client closed the request"


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Buffer the body up to ``max_bytes`` within ``timeout_s``: 413 beyond the size (whatever
    Content-Length says), 408 beyond the time (slow or stalled senders). Then run the app while
    watching the connection: a client that disconnects cancels its request, so the model
    drops its remaining work (``service.runtime.batcher``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except _TooLarge:
            await self._too_large(scope, receive, send)
            return
        except TimeoutError:
            error = RequestTimeout(
                f"the request body did not arrive within {self.timeout_s:g} s",
                field="body",
                limit=int(self.timeout_s),
            )
            headers = {"Connection": "close"}
            await error_response(error.status, error.detail, headers)(scope, receive, send)
            return
        if body is None:
            scope[CLIENT_GONE] = True
            return
        if not_utf8_json(body):
            invalid = InvalidJson(
                "request body is not valid JSON (UTF-8): it starts with a byte-order mark or is "
                "UTF-16/32; send UTF-8 without a BOM"
            )
            await error_response(invalid.status, invalid.detail)(scope, receive, send)
            return
        await self._run_watching(scope, body, receive, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client disconnected first."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _run_watching(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """The app with the buffered body; a disconnect before the answer cancels the app."""
        replayed, answered = False, False
        gone = asyncio.Event()
        request = asyncio.current_task()

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                await gone.wait()
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def tracked(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def watch() -> None:
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except Exception:  # a broken channel: nothing to watch
                return
            if not answered and request is not None:
                scope[CLIENT_GONE] = True
                gone.set()
                request.cancel("client disconnected")

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, replay, tracked)
        finally:
            watcher.cancel()

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"request body exceeds {self.max_bytes} bytes", field="body", limit=self.max_bytes
        )
        await error_response(error.status, error.detail, {"Connection": "close"})(
            scope, receive, send
        )


def not_utf8_json(body: bytes) -> bool:
    """A BOM, or the NUL bytes of UTF-16/32 in the first four bytes: Python's JSON reader would
    detect and accept those encodings; the API takes UTF-8 only (README, Errors)."""
    return body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4]


class RequestMetrics:
    """Latency histogram by route template (unmatched paths: one label), method (unknown ones:
    "other") and status (499 when the client left before its answer): bounded label values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

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
            method = scope["method"] if scope["method"] in METHODS else "other"
            if status is None:
                code = CLIENT_CLOSED_STATUS if scope.get(CLIENT_GONE) else "500"
            else:
                code = str(status)
            REQUEST_LATENCY.labels(path, method, code).observe(time.perf_counter() - started)


class AnswerAtShutdown:
    """A request still running when uvicorn's graceful timeout ends is cancelled by uvicorn,
    which would answer text/plain 500; here it gets 503 ``draining`` JSON instead (its queued
    or running model work is dropped by the batcher as the cancellation passes through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            if scope.get(CLIENT_GONE):
                return  # cancelled because the client left: nobody to answer
            if started:
                raise
            detail = Draining(
                "the service is shutting down and could not finish this request within its "
                "graceful timeout; retry on another replica"
            ).detail
            await error_response(503, detail, {"Connection": "close"})(scope, receive, send)


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
