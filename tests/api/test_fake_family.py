"""A family added from outside the package tree (``tests/fake_family.py``), registered by injection
only: served through ``/v1/classify``, ``/v1/models`` and the batch scorer like a built-in one, and
refused by a registry that does not know it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.batch.models import load_model
from service.batch.runner import Options, run
from service.bundle import BundleError
from service.families import SERVING_FAMILIES
from service.registry import ModelRegistry
from service.settings import Settings
from tests import fake_family

TEXTS = ["one two three four", "just two", "a b c"]
EXPECTED = [["long"], ["short"], ["long"]]


@pytest.fixture()
def bundles(tmp_path: Path) -> Path:
    fake_family.write_bundle(tmp_path / "bundles" / "word-count")
    return tmp_path / "bundles"


def ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text


def test_served_through_classify_and_models(bundles: Path) -> None:
    settings = Settings(bundles_dir=bundles)
    registry = ModelRegistry(settings, (*SERVING_FAMILIES, fake_family.FAMILY))
    with TestClient(create_app(settings, registry)) as client:
        ready(client)
        answer = client.post("/v1/classify", json={"texts": TEXTS, "return_scores": True})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == {"name": "word-count", "version": "1"}
        assert body["head"] == "multi-label"
        assert [[c["label"] for c in r["labels"]] for r in body["results"]] == EXPECTED
        # four words: logits +/-1.5 around the cut at 2.5 words
        assert body["results"][0]["scores"]["long"] == pytest.approx(1 / (1 + 2.718281828**-1.5))
        blank = client.post("/v1/classify", json={"text": "  "})
        assert blank.status_code == 422 and "text is empty" in blank.text
        # /v1/entities serves NER only: the word-count model is not one
        wrong = client.post("/v1/entities", json={"text": "a b", "model": "word-count"})
        assert wrong.status_code == 404 and "it is a word-count model" in wrong.text
        (card,) = client.get("/v1/models").json()["models"]
        assert card["task"] == "word-count"
        assert card["details"] == {"head": "multi-label", "min_words": 3.0}
        assert card["selfcheck"]["status"] == "absent"


def test_scored_by_the_batch_command(bundles: Path, tmp_path: Path) -> None:
    settings = Settings(bundles_dir=bundles)
    registry = ModelRegistry(settings, (*SERVING_FAMILIES, fake_family.FAMILY))
    model = load_model(settings, None, registry=registry)
    source = tmp_path / "in.jsonl"
    gold = [["long"], ["long"], ["long"]]  # the second text's gold is wrong
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "labels": g}) + "\n"
            for i, (t, g) in enumerate(zip(TEXTS, gold, strict=True))
        )
    )
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    summary = run(
        model, Options(input=source, output=out, errors=errors, progress=False, eval=True)
    )
    assert summary.written == 3 and summary.errors == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {r["id"]: [c["label"] for c in r["result"]["labels"]] for r in records}
    assert [by_id[i] for i in range(3)] == EXPECTED
    report = summary.evaluation
    assert report is not None
    # gold long/long/long against predicted long/short/long: 2 TP, 1 FP (short), 1 FN (long)
    assert report["micro_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["per_class"]["long"]["true_positives"] == 2


def test_a_registry_without_the_family_refuses_its_bundle(bundles: Path) -> None:
    settings = Settings(bundles_dir=bundles)
    with pytest.raises(BundleError, match="invalid manifest"):
        ModelRegistry(settings).discover()
