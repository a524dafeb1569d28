"""Structured logs (structlog): one JSON object per line, or readable text for local use.

Every stdlib logger (the service's own, uvicorn's) goes through one structlog formatter, so each
line carries a UTC timestamp, the level, the logger and, inside a request, its ``request_id``
(bound in a context variable by :class:`service.observability.request_context.RequestContext`).
Request texts and API keys are never passed to a logger; :func:`redact` is the safety net for any
field that would carry one by name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import IO, Any, Literal

import structlog

LogFormat = Literal["json", "text"]
# Field names that could only hold a caller's text or a secret: never written, whatever the caller.
SECRET_FIELDS = frozenset(
    {"text", "texts", "body", "authorization", "x-api-key", "api_key", "api_keys", "key"}
)


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace any such field unless it is a number (``texts=3`` is a count, not a text)."""
    for name in SECRET_FIELDS.intersection(event):
        if not isinstance(event[name], int | float):
            event[name] = "[redacted]"
    return event


def drop_color_message(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """uvicorn passes an ANSI-coloured copy of its message as an extra: not for log collectors."""
    event.pop("color_message", None)
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        redact,
        drop_color_message,
    ]


def configure_logging(
    level: str = "info", fmt: LogFormat = "json", stream: IO[str] | None = None
) -> None:
    """Route every logger through structlog, rendering JSON lines (or text) on stderr
    (where uvicorn writes too; Kubernetes collects both streams)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    final = [structlog.processors.format_exc_info] if fmt == "json" else []
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers propagate to the root handler instead of printing their own format; its
    # plain access log is replaced by the service's structured one (RequestContext).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate, access.disabled = [], False, True
