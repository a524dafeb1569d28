"""`POST /v1/postures` next to NER in one app, on tiny random bundles (in-process client)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def client(tiny_bundle: Path, tiny_posture_bundle: Path, tmp_path_factory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("both")
    shutil.copytree(tiny_bundle, root / "tiny-ner")
    shutil.copytree(tiny_posture_bundle, root / "tiny-postures")
    settings = Settings(bundles_dir=root, max_document_chars=50_000)
    with TestClient(create_app(settings)) as test_client:
        deadline = time.monotonic() + 60
        while test_client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield test_client


def test_long_document_is_windowed_and_scored(client: TestClient) -> None:
    text = " ".join(["the court of appeals reviewed the motion to dismiss de novo."] * 300)
    response = client.post("/v1/postures", json={"text": text, "return_scores": True})
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["windows"] > 3  # ~3,300 tokens in 600-token windows: nothing truncated
    assert set(result["scores"]) == {f"Posture {i}" for i in range(5)}
    for posture in result["postures"]:
        assert posture["probability"] >= posture["threshold"] == 0.5
        assert result["scores"][posture["label"]] == posture["probability"]
    probabilities = [p["probability"] for p in result["postures"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_top_k_and_batch(client: TestClient) -> None:
    body = {"texts": ["short ruling", "another " * 50], "top_k": 1}
    results = client.post("/v1/postures", json=body).json()["results"]
    assert len(results) == 2 and all(len(r["postures"]) <= 1 for r in results)
    assert all(r["scores"] is None and r["windows"] == 1 for r in results)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"texts": ["ok", "   "]}, "texts[1]"),
        ({"text": "x" * 50_001}, "text"),
        ({"text": "x", "top_k": 0}, "top_k"),
        ({"text": "x", "return_scores": "yes please"}, "return_scores"),
    ],
)
def test_bad_documents_get_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/postures", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_both_tasks_are_listed_and_ner_still_answers(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["tiny-postures"]["task"] == "postures"
    assert models["tiny-postures"]["details"]["aggregation"] == "max"
    assert models["tiny-ner"]["details"]["constrain_transitions"] is True
    assert client.post("/v1/entities", json={"text": "tushar se misal"}).status_code == 200


@pytest.mark.slow
def test_a_10k_token_document_over_http_while_ner_keeps_answering(
    tiny_bundle: Path, tiny_posture_bundle: Path, tmp_path: Path
) -> None:
    import concurrent.futures

    import httpx

    from tests.helpers import running_server

    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    shutil.copytree(tiny_posture_bundle, tmp_path / "tiny-postures")
    text = " ".join(
        ["The court of appeals reviewed the order granting the motion to dismiss."] * 800
    )
    with running_server(tmp_path) as base, concurrent.futures.ThreadPoolExecutor(2) as pool:
        long_doc = pool.submit(httpx.post, f"{base}/v1/postures", json={"text": text}, timeout=300)
        entities = [
            httpx.post(f"{base}/v1/entities", json={"text": "tushar se misal"}, timeout=60)
            for _ in range(5)
        ]
        response = long_doc.result()
        assert httpx.get(f"{base}/healthz").status_code == 200
    assert all(r.status_code == 200 for r in entities)
    assert response.status_code == 200
    assert response.json()["results"][0]["windows"] >= 18  # ~10,400 tokens in 600-token windows
