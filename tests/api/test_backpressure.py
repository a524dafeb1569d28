"""Back-pressure over HTTP: 429 + Retry-After on a full queue, 504 past the deadline, then 200."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.app import create_app
from service.registry import ModelRegistry
from service.settings import Settings


class GatedSession:
    """The real session, but each call waits until the test opens the gate."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    @property
    def input_names(self) -> list[str]:
        return self.inner.input_names

    @property
    def provider(self) -> str:
        return self.inner.provider

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        return self.inner.run(inputs)


async def client_for(bundle: Path, **overrides) -> tuple[httpx.AsyncClient, GatedSession]:
    settings = Settings(bundles_dir=bundle.parent, **overrides)
    registry = ModelRegistry(settings)
    registry.discover()
    registry.load()
    assert registry.ready
    pipeline = registry.models["tiny-ner"].runtime
    assert pipeline is not None
    gated = GatedSession(pipeline.session)
    pipeline.session = gated
    app = create_app(settings, registry)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test"), gated


@pytest.fixture
async def tight(tiny_bundle: Path) -> AsyncIterator[tuple[httpx.AsyncClient, GatedSession]]:
    client, gated = await client_for(tiny_bundle, max_queue=1, request_timeout_s=0.5)
    yield client, gated
    gated.gate.set()
    await client.aclose()


def failures(error: str) -> float:
    labels = {"model": "tiny-ner", "version": "1", "error": error}
    return REGISTRY.get_sample_value("infer_failures_total", labels) or 0.0


async def wait_for(event: threading.Event) -> None:
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError


@pytest.mark.anyio
async def test_full_queue_gets_429_with_retry_after(tight) -> None:
    client, gated = tight
    before = failures("overloaded")
    running = asyncio.create_task(client.post("/v1/entities", json={"text": "first"}))
    await wait_for(gated.entered)  # the worker is busy with the first request
    queued = asyncio.create_task(client.post("/v1/entities", json={"text": "second"}))
    await asyncio.sleep(0.05)
    refused = await client.post("/v1/entities", json={"text": "third"})
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "overloaded"
    assert int(refused.headers["retry-after"]) >= 1
    assert failures("overloaded") == before + 1
    gated.gate.set()
    assert (await running).status_code == 200 and (await queued).status_code == 200


@pytest.mark.anyio
async def test_deadline_gives_504_and_the_worker_keeps_serving(tight) -> None:
    client, gated = tight
    late = await client.post("/v1/entities", json={"text": "stuck behind a closed gate"})
    assert late.status_code == 504
    assert late.json()["error"]["type"] == "deadline_exceeded"
    assert failures("deadline_exceeded") >= 1
    gated.gate.set()
    again = await client.post("/v1/entities", json={"text": "tushar se 2 misal mangwao"})
    assert again.status_code == 200 and len(again.json()["results"]) == 1


@pytest.mark.anyio
async def test_openapi_documents_429_and_504(tight) -> None:
    client, _ = tight
    spec = (await client.get("/openapi.json")).json()
    for route in ("/v1/entities", "/v1/postures"):
        responses = spec["paths"][route]["post"]["responses"]
        assert {"429", "504"} <= set(responses)
        assert "Retry-After" in responses["429"]["headers"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
