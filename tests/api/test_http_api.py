"""The HTTP API over a real uvicorn process on 127.0.0.1 serving the built-in default bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(default_bundles_dir: Path) -> Iterator[str]:
    limits = {
        "INFER_MAX_TEXTS": "8",
        "INFER_MAX_TEXT_CHARS": "5000",
        "INFER_MAX_BODY_BYTES": "65536",
    }
    with running_server(default_bundles_dir, **limits) as base:
        yield base


def post(base: str, body: object) -> httpx.Response:
    return httpx.post(f"{base}/v1/entities", json=body, timeout=30)


def test_recognises_food_order_entities_with_exact_offsets(server: str) -> None:
    text = "tushar se 2 misal mangwao"
    response = post(server, {"text": text})
    assert response.status_code == 200
    body = response.json()
    assert body["model"]["name"] == "ner-food"
    found = {(e["label"], e["text"]) for e in body["results"][0]["entities"]}
    assert {("STORE", "tushar"), ("QTY", "2"), ("FOOD", "misal")} <= found
    for e in body["results"][0]["entities"]:
        assert text[e["start"] : e["end"]] == e["text"] and 0 <= e["score"] <= 1


def test_batch_answers_in_order_and_empty_text_has_no_entities(server: str) -> None:
    texts = ["inayat cafe se pizza chahiye", "", "   ", "tushar se 2 misal mangwao"]
    results = post(server, {"texts": texts}).json()["results"]
    assert len(results) == 4
    assert results[1]["entities"] == [] and results[2]["entities"] == []
    assert any(e["text"] == "pizza" for e in results[0]["entities"])
    assert any(e["text"] == "misal" for e in results[3]["entities"])


def test_long_text_is_windowed_not_truncated(server: str) -> None:
    text = ". ".join(["tushar se 2 misal mangwao"] * 150) + "."  # ~1,200 tokens, 128-token windows
    entities = post(server, {"text": text}).json()["results"][0]["entities"]
    labels = [e["label"] for e in entities]
    assert [labels.count(label) for label in ("STORE", "QTY", "FOOD")] == [150, 150, 150]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    assert entities[-1]["end"] > len(text) - 20  # the last sentence, far past the first window


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"texts": ["a"] * 9}, 422, "texts"),
        ({"text": "a" * 5001}, 422, "text"),
        ({"texts": ["ok", "b" * 5001]}, 422, "texts[1]"),
        ({"texts": []}, 422, "texts"),
        ({"text": 5}, 422, "text"),
        ({"texts": ["a", None]}, 422, "texts[1]"),
        ({"text": "a", "texts": ["b"]}, 422, "body"),
        ({}, 422, "body"),
        ({"text": "a", "unknown": 1}, 422, "unknown"),
        (["not", "an", "object"], 422, "body"),
        ({"text": "a", "model": "nope"}, 404, "model"),
    ],
)
def test_bad_requests_get_json_errors_naming_the_field(
    server: str, body, status: int, field: str
) -> None:
    response = post(server, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["field"] == field and error["message"]
    if error["type"] == "limit_exceeded":
        assert error["limit"] in (8, 5000)


def test_malformed_json_and_huge_bodies(server: str) -> None:
    bad = httpx.post(
        f"{server}/v1/entities",
        content=b'{"text": "a"',
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "malformed_json"
    huge = httpx.post(
        f"{server}/v1/entities", content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and huge.json()["error"]["limit"] == 65536
    lone_surrogate = httpx.post(
        f"{server}/v1/entities",
        content=b'{"text": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert lone_surrogate.status_code == 422
    assert post(server, {"text": "still alive"}).status_code == 200


def test_models_health_metrics(server: str) -> None:
    models = {m["name"]: m for m in httpx.get(f"{server}/v1/models").json()["models"]}
    # `make run` also builds the joint nlu-food into the same directory
    assert set(models) - {"nlu-food"} == {
        "ner-food",
        "postures-legal",
        "intent-food",
        "postures-tfidf",
        "postures-ensemble",
    }
    ner = models["ner-food"]
    assert "B-FOOD" in ner["labels"]
    assert ner["parity"]["tag_agreement"] == 1.0 and ner["provider"] == "CPUExecutionProvider"
    assert models["intent-food"]["details"]["head"] == "single-label"
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok", "detail": None}
    post(server, {"text": "tushar se misal"})
    metrics = httpx.get(f"{server}/metrics").text
    assert (
        'infer_request_duration_seconds_count{method="POST",route="/v1/entities",status="200"}'
        in metrics
    )
    assert 'infer_inference_duration_seconds_count{model="ner-food",version="1"}' in metrics
    assert (
        'infer_stage_duration_seconds_count{model="ner-food",stage="decode",version="1"}' in metrics
    )
    assert 'infer_failures_total{error="limit_exceeded",model="ner-food",version="1"}' in metrics
    assert "infer_ready 1.0" in metrics


def test_openapi_documents_error_statuses(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    responses = spec["paths"]["/v1/entities"]["post"]["responses"]
    assert {"200", "400", "404", "413", "422", "503"} <= set(responses)


def _posture_names(server: str, text: str) -> tuple[set[str], dict[str, object]]:
    response = httpx.post(f"{server}/v1/postures", json={"text": text}, timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    return {p["label"] for p in result["postures"]}, result


def test_default_posture_model_serves_calibrated_postures(server: str) -> None:
    """The trained default posture bundle answers beside NER with its tuned thresholds."""
    from default_models.legal_corpus import generate_splits

    cards = {m["name"]: m for m in httpx.get(f"{server}/v1/models").json()["models"]}
    details = cards["postures-legal"]["details"]
    thresholds = details["thresholds"]
    # Calibrated by cross-validation: the card says which option shipped and what it scored out
    # of fold; a per-class option ships distinct thresholds, the others one shared threshold.
    calibration = details["calibration"]
    method = calibration["method"]
    assert method in ("at_0.5", "global", "per_class", "shrunk")
    options = calibration["options"]
    assert options[method]["oof_micro_f1"] >= options["at_0.5"]["oof_micro_f1"]
    if method in ("at_0.5", "global"):
        assert len(set(thresholds.values())) == 1
    else:
        assert any(calibration["own_threshold"])
    docs = generate_splits()["test"]
    longest = max(docs, key=lambda d: len(d.text))
    _, result = _posture_names(server, longest.text)
    assert result["windows"] > 1  # a long opinion is windowed, not truncated
    for posture in result["postures"]:
        assert posture["probability"] >= posture["threshold"] == thresholds[posture["label"]]
    # Held-out documents (phrasings and names never seen in training): the served predictions
    # must be far better than chance. Micro-F1 over 40 of them.
    tp = fp = fn = 0
    for doc in docs[:40]:
        predicted, _ = _posture_names(server, doc.text)
        gold = set(doc.labels)
        tp, fp, fn = (
            tp + len(predicted & gold),
            fp + len(predicted - gold),
            fn + len(gold - predicted),
        )
    assert 2 * tp / (2 * tp + fp + fn) >= 0.55


def test_default_intent_and_ner_models_parse_a_chat_order(server: str) -> None:
    """`make run`'s /v1/parse: the intent model and the NER model on one utterance."""
    text = "order 2 masala dosa from saravana bhavan"
    response = httpx.post(f"{server}/v1/parse", json={"text": text}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["intent_model"]["name"] == "intent-food"
    assert body["ner_model"]["name"] == "ner-food"
    result = body["results"][0]
    assert result["ranking"][0]["name"] == "order"
    assert result["intent"] is None or result["intent"]["name"] == "order"
    found = {(e["label"], e["text"]) for e in result["entities"]}
    assert {("QTY", "2"), ("FOOD", "masala dosa"), ("STORE", "saravana bhavan")} <= found
