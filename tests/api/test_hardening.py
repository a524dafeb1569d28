"""Hostile-client cases in-process: token budget, parser failures, HEAD probes, bounded metric
labels, client disconnects (499, work cancelled), API-key file comments."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.api.auth import load_api_keys
from service.app import create_app
from service.registry import ModelRegistry
from service.runtime.cancel import Cancelled, current
from service.settings import Settings


class HeldSession:
    """The real session behind a gate; while held, the call can be terminated like ORT's."""

    def __init__(self, inner: Any) -> None:
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
        options = SimpleNamespace(terminate=False)
        scope = current()
        assert scope is not None
        scope.attach(options)
        self.entered.set()
        try:
            while not self.gate.wait(0.005):
                if options.terminate:
                    raise Cancelled("terminated")
        finally:
            scope.detach(options)
        return self.inner.run(inputs)


async def app_for(bundle: Path, **overrides: Any) -> tuple[Any, HeldSession]:
    settings = Settings(bundles_dir=bundle.parent, **overrides)
    registry = ModelRegistry(settings)
    registry.discover()
    registry.load()
    pipeline = registry.models["tiny-ner"].runtime
    assert pipeline is not None
    held = HeldSession(pipeline.session)
    held.gate.set()
    pipeline.session = held
    return create_app(settings, registry), held


@pytest.fixture
async def served(tiny_bundle: Path) -> AsyncIterator[tuple[httpx.AsyncClient, HeldSession, Any]]:
    app, held = await app_for(tiny_bundle, max_request_tokens=60)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, held, app
    held.gate.set()


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.anyio
async def test_token_budget_is_counted_after_tokenization(served) -> None:
    client, _, _ = served
    # 40 characters but 40 tokens (one per CJK character): the character limit lets it through.
    cjk = "漢" * 70
    for body, field in (({"text": cjk}, "text"), ({"texts": ["ok", cjk]}, "texts")):
        response = await client.post("/v1/entities", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error == {**error, "type": "limit_exceeded", "field": field, "limit": 60}
        assert "tokens" in error["message"]
    ascii_text = "misal " * 20  # 120 characters, 20 tokens: within the budget
    assert (await client.post("/v1/entities", json={"text": ascii_text})).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {}),  # nesting far past the recursion limit
        (b'{"text": "\xff\xfe"}', {}),  # invalid UTF-8
        (gzip.compress(b'{"text": "a"}'), {"content-encoding": "gzip"}),
        (b'{"text": "a", "x": ' + b"9" * 5000 + b"}", {}),  # integer over 4,300 digits
        (
            '{"text": "café"}'.encode("latin-1"),
            {"content-type": "application/json; charset=latin-1"},
        ),
        (b'{"text": "a"', {}),  # truncated
    ],
)
async def test_every_body_the_parser_rejects_is_malformed_json(
    served, content: bytes, headers: dict[str, str]
) -> None:
    client, _, _ = served
    response = await client.post(
        "/v1/entities", content=content, headers={"content-type": "application/json", **headers}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "malformed_json"


@pytest.mark.anyio
async def test_head_on_the_probes(served) -> None:
    client, _, _ = served
    for path in ("/healthz", "/readyz"):
        response = await client.head(path)
        assert response.status_code == 200 and response.content == b""


@pytest.mark.anyio
async def test_metric_labels_stay_bounded_whatever_the_method_or_path(served) -> None:
    client, _, _ = served
    size_before = len((await client.get("/metrics")).text)
    rng = np.random.default_rng(3)
    letters = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for i in range(50):
        method = "".join(rng.choice(letters, size=10)) + str(i)
        await client.request(method, f"/random/path/{i}")
        await client.request(method, "/v1/entities")
    await client.request("X" * 60_000, "/healthz")
    metrics = (await client.get("/metrics")).text
    methods = set()
    routes = set()
    for line in metrics.splitlines():
        if line.startswith("infer_request_duration_seconds_count{"):
            labels = dict(
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            methods.add(labels["method"].strip('"'))
            routes.add(labels["route"].strip('"'))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}
    assert "other" in methods
    assert not any(r.startswith("/random") for r in routes) and "unmatched" in routes
    # growth, not size: the registry is process-wide and holds every earlier test's series
    # (one unbounded label over 100 random requests would add ~100 histograms, ~200 kB)
    assert len(metrics) - size_before < 50_000


def http_scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


@pytest.mark.anyio
async def test_client_disconnect_cancels_the_work_and_is_recorded_as_499(served) -> None:
    client, held, app = served
    await client.get("/readyz")
    held.gate.clear()
    body = json.dumps({"text": "tushar se 2 misal mangwao"}).encode()
    gone = asyncio.Event()
    messages: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    labels = {"route": "/v1/entities", "method": "POST", "status": "499"}
    before = sample("infer_request_duration_seconds_count", labels)
    terminated = sample(
        "infer_cancelled_total", {"model": "tiny-ner", "version": "1", "unit": "onnx_calls"}
    )
    request = asyncio.create_task(app(http_scope("/v1/entities", body), receive, send))
    for _ in range(500):
        if held.entered.is_set():
            break
        await asyncio.sleep(0.01)
    assert held.entered.is_set()  # the ONNX call is running (held)
    gone.set()  # the client disconnects
    await asyncio.wait_for(request, 5)
    assert messages == []  # nobody to answer
    assert sample("infer_request_duration_seconds_count", labels) == before + 1
    no_500 = {"route": "/v1/entities", "method": "POST", "status": "500"}
    assert sample("infer_request_duration_seconds_count", no_500) == 0
    for _ in range(200):  # the worker sees the termination shortly after
        if (
            sample(
                "infer_cancelled_total", {"model": "tiny-ner", "version": "1", "unit": "onnx_calls"}
            )
            > terminated
        ):
            break
        await asyncio.sleep(0.01)
    assert (
        sample("infer_cancelled_total", {"model": "tiny-ner", "version": "1", "unit": "onnx_calls"})
        == terminated + 1
    )
    held.gate.set()
    assert (await client.post("/v1/entities", json={"text": "misal"})).status_code == 200


def test_indented_comment_in_the_key_file_is_not_a_key(tiny_bundle: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("  #retired-key\n\t# another\nlive-key-0123\n   \n")
    keys = load_api_keys(Settings(bundles_dir=tiny_bundle.parent, api_keys_file=key_file))
    assert keys == [b"live-key-0123"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
