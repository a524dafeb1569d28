"""The input policy on the classifier routes: every result reports tokens and windows read;
``error`` refuses a text over one window, ``truncate`` reads its first window and flags it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

CASE = "bert-single-pt"
SHORT, LONG = "where is my order", "where is my order and why is it late " * 20


@pytest.fixture(scope="module")
def client(
    classifier_bundles: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("truncation")
    shutil.copytree(classifier_bundles(CASE), root / CASE)
    with TestClient(create_app(Settings(bundles_dir=root))) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield c


def test_classify_reports_tokens_windows_and_truncation(client: TestClient) -> None:
    full = client.post("/v1/classify", json={"texts": [SHORT, LONG], "return_scores": True})
    short, long = full.json()["results"]
    assert short["windows"] == 1 < long["windows"] and long["tokens"] > short["tokens"]
    assert not short["truncated"] and not long["truncated"]
    cut = client.post(
        "/v1/classify",
        json={"texts": [SHORT, LONG], "truncation": "truncate", "return_scores": True},
    ).json()["results"]
    assert cut[0] == short  # one window: untouched
    assert cut[1]["truncated"] and cut[1]["windows"] == 1 and cut[1]["tokens"] == long["tokens"]
    refused = client.post("/v1/classify", json={"texts": [SHORT, LONG], "truncation": "error"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "texts[1]"
    assert (
        client.post("/v1/classify", json={"text": SHORT, "truncation": "error"}).status_code == 200
    )
