"""Logging and tracing are process-wide: each test configures them and gets them back as found."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from service.app import create_app
from service.observability import tracing
from service.observability.logs import LogFormat, configure_logging
from service.registry import ModelRegistry
from service.settings import Settings


class Logs:
    """What the service logged, as text lines or parsed JSON objects."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """The service's lines (the test's own HTTP client, httpx, logs each call too)."""
        parsed = [json.loads(line) for line in self.lines()]
        return [r for r in parsed if not r.get("logger", "").startswith(("httpx", "httpcore"))]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def capture_logs() -> Iterator[Any]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def configure(level: str = "debug", fmt: LogFormat = "json") -> Logs:
        logs = Logs()
        configure_logging(level, fmt, logs.stream)
        return logs

    yield configure
    root.handlers, root.level = saved
    structlog.reset_defaults()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).disabled = False


@pytest.fixture
def no_tracing() -> Iterator[None]:
    yield
    tracing.disable()


@contextmanager
def client_for(settings: Settings, registry: ModelRegistry | None = None) -> Iterator[TestClient]:
    with TestClient(create_app(settings, registry), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client
