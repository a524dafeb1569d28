"""Structured logs: JSON lines by default, text on request; never a caller's text or API key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loadtest.server import running_service
from service.observability import tracing
from service.settings import Settings
from tests.observability.conftest import client_for

SECRET_TEXT = "zanzibar-quokka-7731 wants two misal"
SECRET_KEY = "k-secret-5f1e2d3c4b5a69788796"
WRONG_KEY = "k-wrong-0a9b8c7d6e5f4a3b2c1d"


def test_no_text_or_key_in_logs_or_spans_whatever_the_outcome(
    tiny_bundle: Path, capture_logs, no_tracing
) -> None:
    logs = capture_logs("debug")
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    settings = Settings(
        bundles_dir=tiny_bundle.parent, api_keys=[SECRET_KEY], max_text_chars=60, max_texts=2
    )
    ok = {"Authorization": f"Bearer {SECRET_KEY}"}
    with client_for(settings) as client:
        calls = [
            ({"text": SECRET_TEXT}, ok, 200),
            ({"texts": [SECRET_TEXT, SECRET_TEXT]}, {"X-API-Key": SECRET_KEY}, 200),
            ({"text": SECRET_TEXT}, {"Authorization": f"Bearer {WRONG_KEY}"}, 401),
            ({"text": SECRET_TEXT * 3}, ok, 422),  # too long
            ({"texts": [SECRET_TEXT] * 3}, ok, 422),  # too many
            ({"text": SECRET_TEXT, "colour": SECRET_TEXT}, ok, 422),  # unknown field
            ({"text": SECRET_TEXT, "model": SECRET_TEXT}, ok, 404),
        ]
        for body, headers, status in calls:
            assert client.post("/v1/entities", json=body, headers=headers).status_code == status
        malformed = client.post(
            "/v1/entities",
            content=f'{{"text": "{SECRET_TEXT}"'.encode(),
            headers={**ok, "content-type": "application/json"},
        )
        assert malformed.status_code == 400
    written = logs.stream.getvalue()
    assert "service.access" in written and '"status": 401' in written  # the lines are there
    spans = exporter.get_finished_spans()
    assert len(spans) > len(calls)
    recorded = written + "".join(json.dumps(dict(s.attributes or {})) + s.name for s in spans)
    for secret in ("zanzibar", "quokka", SECRET_KEY, WRONG_KEY, "5f1e2d3c", "0a9b8c7d"):
        assert secret not in recorded


def test_text_format_is_readable_lines_with_the_request_id(tiny_bundle: Path, capture_logs) -> None:
    logs = capture_logs("info", "text")
    with client_for(Settings(bundles_dir=tiny_bundle.parent)) as client:
        logs.clear()
        client.post("/v1/entities", json={"text": "two misal"}, headers={"X-Request-ID": "t-1"})
    access = [line for line in logs.lines() if "service.access" in line]
    assert len(access) == 1
    line = access[0]
    assert not line.startswith("{")
    for part in ("request_id=t-1", "route=/v1/entities", "status=200", "model=tiny-ner", "[info"):
        assert part in line, line


def test_probes_are_logged_at_debug_only(tiny_bundle: Path, capture_logs) -> None:
    logs = capture_logs("info")
    with client_for(Settings(bundles_dir=tiny_bundle.parent)) as client:
        logs.clear()
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200
        client.get("/v1/models")
    assert [r["route"] for r in logs.records() if r["logger"] == "service.access"] == ["/v1/models"]


def test_real_server_writes_json_lines_only_with_the_request_id(
    tiny_bundle: Path, tmp_path
) -> None:
    """``python -m service`` end to end: uvicorn's own lines are JSON too, no plain access log."""
    log = tmp_path / "service.log"
    with running_service(tiny_bundle.parent, log, {"INFER_LOG_LEVEL": "info"}) as service:
        response = httpx.post(
            f"{service.base}/v1/entities",
            json={"text": "two misal"},
            headers={"X-Request-ID": "abc"},
        )
        assert response.status_code == 200 and response.headers["x-request-id"] == "abc"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    about = [r for r in records if r.get("request_id") == "abc"]
    assert [(r["logger"], r.get("status"), r.get("model")) for r in about] == [
        ("service.access", 200, "tiny-ner")
    ], about
    assert any(r["logger"] == "uvicorn.error" for r in records)  # "Uvicorn running on ..."
    assert not any(r["logger"] == "uvicorn.access" for r in records)
    assert not any("color_message" in r for r in records)
    assert service.process.returncode == 0


def test_fields_named_like_a_text_or_a_key_are_redacted_unless_counts(capture_logs) -> None:
    logs = capture_logs("info")
    logging.getLogger("service.anything").info(
        "oops", extra={"texts": ["zanzibar"], "authorization": "Bearer k-1", "windows": 3}
    )
    logging.getLogger("service.anything").info("counted", extra={"texts": 2})
    first, second = logs.records()
    assert first["texts"] == first["authorization"] == "[redacted]" and first["windows"] == 3
    assert second["texts"] == 2
