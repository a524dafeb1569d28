"""OpenTelemetry: off by default; when on, a request span linked to the caller's traceparent with
queue, tokenize, inference and decode children carrying the batch's size and tokens."""

from __future__ import annotations

import asyncio
import itertools
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.app import create_app
from service.observability import tracing
from service.registry import ModelRegistry
from service.settings import Settings
from tests.observability.conftest import client_for
from tests.run_hooks import RunHooks

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x"}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_off_unless_the_standard_variables_ask(env: dict[str, str], wanted: str | None) -> None:
    assert tracing.requested(env) == wanted


def test_configured_from_env_with_the_otlp_exporter(no_tracing) -> None:
    assert not tracing.configure({})
    assert not tracing.enabled()
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert tracing.configure(env)
    assert tracing.enabled()
    with pytest.raises(tracing.TracingUnavailable, match="supported are"):
        tracing.configure({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_request_span_and_stage_spans_follow_the_callers_trace(
    tiny_bundle: Path, no_tracing, capture_logs
) -> None:
    logs = capture_logs("info")
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
    with client_for(Settings(bundles_dir=tiny_bundle.parent)) as client:
        exporter.clear()
        response = client.post("/v1/entities", json={"texts": ["two misal", "a"]}, headers=headers)
        assert response.status_code == 200
        mine = client.get("/v1/models", headers={**headers, "X-Request-ID": "own"})
    assert response.headers["x-request-id"] == TRACE_ID
    (line,) = [r for r in logs.records() if r.get("request_id") == "own"]
    assert line["trace_id"] == TRACE_ID and mine.headers["x-request-id"] == "own"
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name != "GET /v1/models"}
    assert set(spans) == {"POST /v1/entities", "queue", "tokenize", "inference", "decode"}
    server = spans["POST /v1/entities"]
    assert server.kind == SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_SPAN
    attributes = dict(server.attributes or {})
    assert attributes["http.route"] == "/v1/entities"
    assert attributes["http.response.status_code"] == 200
    assert attributes["infer.model"] == "tiny-ner" and attributes["infer.texts"] == 2
    stages = [spans[n] for n in ("queue", "tokenize", "inference", "decode")]
    for stage in stages:
        assert stage.context.trace_id == server.context.trace_id
        assert stage.parent is not None and stage.parent.span_id == server.context.span_id
        assert server.start_time <= stage.start_time <= stage.end_time <= server.end_time
    for earlier, later in itertools.pairwise(stages):
        assert earlier.end_time <= later.start_time + 1_000  # in order (1 µs of rounding)
    inference = dict(stages[2].attributes or {})
    assert inference["infer.batch.requests"] == 1
    assert inference["infer.batch.texts"] == 2 and inference["infer.batch.windows"] == 2
    assert inference["infer.request.tokens"] == inference["infer.batch.tokens"] > 0


@pytest.mark.anyio
async def test_one_batch_of_several_requests_gives_each_its_own_stage_spans(
    tiny_bundle: Path, no_tracing
) -> None:
    """Concurrent requests merged into one ONNX batch: every request's inference span reports
    the whole batch, and each hangs under its own request span."""
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    hooks = RunHooks()
    settings = Settings(bundles_dir=tiny_bundle.parent, batch_wait_ms=50)
    registry = ModelRegistry(settings, hooks.families())
    registry.discover()
    registry.load()
    gate = asyncio.Event()
    release = asyncio.get_running_loop()

    def slow_first(original, items):  # hold the first batch until the others have queued
        asyncio.run_coroutine_threadsafe(gate.wait(), release).result(10)
        hooks.set("tiny-ner", None)
        return original(items)

    hooks.set("tiny-ner", slow_first)
    app = create_app(registry.settings, registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = asyncio.create_task(client.post("/v1/entities", json={"text": "one"}))
        await asyncio.sleep(0.2)
        rest = [
            asyncio.create_task(client.post("/v1/entities", json={"text": f"text {i}"}))
            for i in range(3)
        ]
        await asyncio.sleep(0.2)
        gate.set()
        answers = await asyncio.gather(first, *rest)
    registry.close()
    assert [a.status_code for a in answers] == [200] * 4
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 4 and len({s.context.trace_id for s in servers}) == 4
    inferences = [s for s in spans if s.name == "inference"]
    assert len(inferences) == 4
    sizes = sorted(dict(s.attributes or {})["infer.batch.requests"] for s in inferences)
    assert sizes == [1, 3, 3, 3]
    for span in inferences:
        owner = next(s for s in servers if s.context.trace_id == span.context.trace_id)
        assert span.parent is not None and span.parent.span_id == owner.context.span_id
    assert all(s.status.status_code != StatusCode.ERROR for s in servers)


def test_otlp_exporter_delivers_spans_to_a_collector_on_loopback(
    monkeypatch: pytest.MonkeyPatch, no_tracing
) -> None:
    """The ``otlp`` extra for real: spans reach an OTLP/HTTP endpoint as protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "nlp-inference-test")
        assert tracing.configure()  # the endpoint alone turns tracing on, exporter otlp
        with tracing.server_span("POST", {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}):
            pass
        tracing.disable()  # shutdown flushes the batch
    finally:
        server.shutdown()
    assert [(path, kind) for path, kind, _ in received] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    request = ExportTraceServiceRequest.FromString(received[0][2])
    (resource,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "nlp-inference-test"
    (span,) = [s for scope in resource.scope_spans for s in scope.spans]
    assert span.name == "POST" and span.trace_id.hex() == TRACE_ID
