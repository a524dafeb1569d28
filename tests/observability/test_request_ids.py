"""Request ids: taken from X-Request-ID or traceparent, made up otherwise, returned on every
response (errors included) and carried by every log line written while the request runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.registry import ModelRegistry
from service.settings import Settings
from tests.observability.conftest import client_for
from tests.run_hooks import RunHooks

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def settings(tiny_bundle: Path) -> Settings:
    return Settings(bundles_dir=tiny_bundle.parent, max_body_bytes=4096, max_text_chars=50)


def test_caller_id_is_returned_and_in_every_log_line_of_the_request(
    settings: Settings, capture_logs
) -> None:
    logs = capture_logs()
    with client_for(settings) as client:
        logs.clear()
        response = client.post(
            "/v1/entities", json={"text": "two misal"}, headers={"X-Request-ID": "abc"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "abc"
        records = logs.records()
    assert records, "the request wrote no log line"
    assert all(r.get("request_id") == "abc" for r in records), records
    access = [r for r in records if r["logger"] == "service.access"]
    assert len(access) == 1
    line = access[0]
    assert line["route"] == "/v1/entities" and line["status"] == 200 and line["method"] == "POST"
    assert line["model"] == "tiny-ner" and line["texts"] == 1
    assert line["tokens"] >= 2 and line["windows"] == 1
    assert line["level"] == "info" and line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])


def test_ids_from_traceparent_generated_or_replaced_when_unsafe(settings: Settings) -> None:
    with client_for(settings) as client:
        traced = client.get("/v1/models", headers={"traceparent": TRACEPARENT})
        assert traced.headers["x-request-id"] == TRACE_ID
        both = client.get("/healthz", headers={"traceparent": TRACEPARENT, "X-Request-ID": "r-1"})
        assert both.headers["x-request-id"] == "r-1"
        made = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
        assert len(made) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made)
        for unsafe in ("has space", "x" * 129, 'quote"d', "new\tline"):
            got = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
            assert got != unsafe and re.fullmatch(r"[0-9a-f]{32}", got)
        bad_parent = client.get("/healthz", headers={"traceparent": f"00-{'0' * 32}-{'1' * 16}-01"})
        assert bad_parent.headers["x-request-id"] != "0" * 32


def test_every_error_response_carries_the_id_and_its_log_line_the_error_type(
    settings: Settings, tiny_bundle: Path, capture_logs
) -> None:
    logs = capture_logs()
    keyed = Settings(bundles_dir=tiny_bundle.parent, api_keys=["k-0123456789abcdef"])
    cases = [
        (settings, "post", "/v1/entities", {"content": b"{nope"}, 400, "malformed_json"),
        (settings, "post", "/v1/entities", {"json": {"text": "x" * 51}}, 422, "limit_exceeded"),
        (settings, "post", "/v1/entities", {"content": b"[" * 5000}, 413, "payload_too_large"),
        (
            settings,
            "post",
            "/v1/entities",
            {"json": {"text": "a", "model": "no"}},
            404,
            "model_not_found",
        ),
        (settings, "get", "/nowhere", {}, 404, "not_found"),
        (keyed, "get", "/v1/models", {}, 401, "unauthorized"),
    ]
    for case_settings, method, path, kwargs, status, error in cases:
        with client_for(case_settings) as client:
            logs.clear()
            rid = f"case-{status}-{error}"
            headers = {"X-Request-ID": rid, "content-type": "application/json"}
            response = getattr(client, method)(path, headers=headers, **kwargs)
            assert response.status_code == status, response.text
            assert response.json()["error"]["type"] == error
            assert response.headers["x-request-id"] == rid
            access = [r for r in logs.records() if r["logger"] == "service.access"]
            assert [(a["status"], a["error"], a["request_id"]) for a in access] == [
                (status, error, rid)
            ]


def test_unexpected_error_500_has_the_id_and_its_traceback_line_too(
    settings: Settings, capture_logs
) -> None:
    hooks = RunHooks()
    logs = capture_logs()
    with client_for(settings, ModelRegistry(settings, hooks.families())) as client:

        def explode(original, items):
            raise RuntimeError("boom")

        hooks.set("tiny-ner", explode)
        logs.clear()
        response = client.post(
            "/v1/entities", json={"text": "two misal"}, headers={"X-Request-ID": "r500"}
        )
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "internal_error"
        assert response.headers["x-request-id"] == "r500"
        request_lines = [r for r in logs.records() if r.get("request_id") == "r500"]
    kinds = {(r["logger"], r["level"]) for r in request_lines}
    assert ("service.errors", "error") in kinds and ("service.access", "warning") in kinds
    assert any("RuntimeError: boom" in r.get("exception", "") for r in request_lines)
    assert all(
        r.get("request_id") == "r500" for r in logs.records() if r["logger"] != "service.batcher"
    )
