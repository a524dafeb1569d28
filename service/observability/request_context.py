"""Request ids and the access log: the outermost layer of the app.

Each request gets an id: the caller's ``X-Request-ID`` when it is a sane token, else the trace id
of the caller's W3C ``traceparent``, else the trace id of the request's own span (tracing on), else
a new random one. It is returned as ``X-Request-ID`` on every response, errors included, bound to
every log line written while the request runs, and reported in one structured access log line
with route, status, duration and what :func:`annotate` added (model, counts, error type).
"""

from __future__ import annotations

import logging
import random
import re
import time
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry.trace import StatusCode
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability import tracing

HEADER = "X-Request-ID"
# Printable, no spaces or quotes, bounded: safe to echo in a header and to write in a log line.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
# Probes and scrapes come every few seconds: their access lines are debug unless they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_fields: ContextVar[dict[str, Any] | None] = ContextVar("access_fields", default=None)
# A stdlib logger like every other: configure_logging renders its ``extra`` fields as JSON keys.
access_log = logging.getLogger("service.access")


def annotate(**fields: Any) -> None:
    """Add fields (model, texts, tokens, windows, error) to this request's access log line."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def request_id(headers: Headers, own_trace_id: str | None) -> str:
    given = headers.get("x-request-id", "").strip()
    if _SANE_ID.fullmatch(given):
        return given
    parent = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip())
    if parent and parent.group(1) != "0" * 32:
        return parent.group(1)
    # 128 random bits as 32 hex digits, like uuid4().hex, without its os.urandom system call
    # per request: an id needs uniqueness, not unpredictability.
    return own_trace_id or f"{random.getrandbits(128):032x}"


class RequestContext:
    """Request id in, out and in the logs; the request's span; one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        with tracing.server_span(scope["method"], headers) as span:
            trace_id = tracing.trace_id(span)
            rid = request_id(headers, trace_id)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=rid)
            if trace_id is not None:  # tracing on: log lines lead to the trace too
                structlog.contextvars.bind_contextvars(trace_id=trace_id)
            fields: dict[str, Any] = {}
            _fields.set(fields)
            status, answered, started = 500, False, time.perf_counter()

            async def send_with_id(message: Message) -> None:
                nonlocal status, answered
                if message["type"] == "http.response.start":
                    status, answered = message["status"], True
                    MutableHeaders(scope=message)[HEADER] = rid
                await send(message)

            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Starlette's error middleware has answered 500 (through send_with_id) and its
                # handler logged the traceback with this request id; uvicorn would log it again.
                if not answered:
                    raise
            finally:
                seconds = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None)
                self._log(scope, route, status, seconds, fields)
                structlog.contextvars.clear_contextvars()  # later lines of this task are not ours
                if span is not None:
                    span.update_name(f"{scope['method']} {route or 'unmatched'}")
                    span.set_attributes(
                        {
                            "http.request.method": scope["method"],
                            "http.route": route or "unmatched",
                            "http.response.status_code": status,
                            "infer.request_id": rid,
                            **{f"infer.{k}": v for k, v in fields.items()},
                        }
                    )
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)

    @staticmethod
    def _log(
        scope: Scope, route: str | None, status: int, seconds: float, fields: dict[str, Any]
    ) -> None:
        quiet = scope["path"] in QUIET_PATHS and status < 400
        level = logging.DEBUG if quiet else (logging.WARNING if status >= 500 else logging.INFO)
        if access_log.isEnabledFor(level):
            line = {
                "method": scope["method"],
                "path": scope["path"],
                "route": route or "unmatched",
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                **fields,
            }
            access_log.log(level, "request", extra=line)
