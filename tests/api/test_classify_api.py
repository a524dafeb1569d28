"""`POST /v1/classify` on tiny random bundles (in-process client): multi-label and single-label
classify bundles, a posture bundle (a multi-label classifier too) and an NER bundle side by side."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.classify_families import LABELS

TEXT = "order 3 paneer tikka from sharma sweets"


@pytest.fixture(scope="module")
def client(
    tiny_bundle: Path,
    tiny_posture_bundle: Path,
    classifier_bundles: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("classify-api")
    shutil.copytree(tiny_bundle, root / "tiny-ner")
    shutil.copytree(tiny_posture_bundle, root / "tiny-postures")
    shutil.copytree(classifier_bundles("bert-multi-dir"), root / "topics")
    shutil.copytree(classifier_bundles("bert-single-pt"), root / "intents")
    shutil.copytree(classifier_bundles("bert-single-pt"), root / "picky")
    for name in ("topics", "intents", "picky"):
        manifest = json.loads((root / name / "bundle.json").read_text())
        manifest["name"] = name
        if name == "picky":  # abstains below 0.99: these random weights never reach it
            manifest["classify"]["abstain_threshold"] = 0.99
        (root / name / "bundle.json").write_text(json.dumps(manifest))
    with TestClient(create_app(Settings(bundles_dir=root))) as test_client:
        deadline = time.monotonic() + 60
        while test_client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield test_client


def _classify(client: TestClient, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_multi_label_answers_every_class_over_its_threshold(client: TestClient) -> None:
    long_text = " ".join([TEXT] * 40)
    answer = _classify(client, texts=[TEXT, long_text], model="topics", return_scores=True)
    assert answer["model"] == {"name": "topics", "version": "1"}
    assert answer["head"] == "multi-label"
    short, long = answer["results"]
    assert short["windows"] == 1 and long["windows"] > 2
    for result in (short, long):
        assert set(result["scores"]) == set(LABELS)
        expected = sorted(
            (label for label, p in result["scores"].items() if p >= 0.5),
            key=lambda label: -result["scores"][label],
        )
        assert [p["label"] for p in result["labels"]] == expected
        assert all(p["threshold"] == 0.5 for p in result["labels"])
    limited = _classify(client, text=long_text, model="topics", top_k=1)["results"][0]
    assert limited["labels"] == long["labels"][:1] and limited["scores"] is None


def test_single_label_answers_the_argmax_or_abstains(client: TestClient) -> None:
    answer = _classify(client, text=TEXT, model="intents", return_scores=True)
    assert answer["head"] == "single-label"
    (result,) = answer["results"]
    scores = result["scores"]
    assert sum(scores.values()) == pytest.approx(1.0)
    top = max(scores, key=scores.__getitem__)
    assert result["labels"] == [{"label": top, "probability": scores[top], "threshold": 0.0}]
    picky = _classify(client, text=TEXT, model="picky", return_scores=True)["results"][0]
    assert picky["scores"] == scores and max(scores.values()) < 0.99
    assert picky["labels"] == []  # "no intent"


def test_posture_bundles_answer_on_both_routes_alike(client: TestClient) -> None:
    text = "the court of appeals reviewed the motion to dismiss de novo. " * 20
    body = {"text": text, "model": "tiny-postures", "return_scores": True}
    classified = _classify(client, **body)["results"][0]
    postures = client.post("/v1/postures", json=body).json()["results"][0]
    assert classified["labels"] == postures["postures"]
    assert classified["scores"] == postures["scores"]
    assert classified["windows"] == postures["windows"]


# The bundle tasks /v1/classify serves, as its messages name them (every registered family whose
# route or also_routes is classify).


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        ({"text": TEXT, "model": "nope"}, 404, "model", "model named 'nope' (loaded:"),
        ({"text": TEXT, "model": "tiny-ner"}, 404, "model", "it is a ner model"),
        ({"text": TEXT}, 422, "model", "models are loaded; set model to one of"),
        ({"text": TEXT, "model": "topics", "head": "x"}, 422, "head", "several sequence heads"),
        ({"text": TEXT, "model": "topics", "top_k": 0}, 422, "top_k", "greater than or equal"),
        ({"text": TEXT, "model": "topics", "top_k": 1001}, 422, "top_k", "less than or equal"),
        ({"text": "  ", "model": "intents"}, 422, "text", "nothing to classify"),
        ({"text": TEXT, "texts": [TEXT], "model": "topics"}, 422, None, "exactly one of"),
        ({"texts": [], "model": "topics"}, 422, "texts", "at least one"),
        ({"text": TEXT, "model": "topics", "return_scores": 1}, 422, "return_scores", "bool"),
    ],
)
def test_bad_requests_get_clear_errors(
    client: TestClient,
    body: dict,
    status: int,
    field: str | None,
    message: str,  # type: ignore[type-arg]
) -> None:
    response = client.post("/v1/classify", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"]
    if field is not None:
        assert error.get("field") == field


def test_postures_route_still_serves_posture_bundles_only(client: TestClient) -> None:
    response = client.post("/v1/postures", json={"text": TEXT, "model": "topics"})
    assert response.status_code == 404
    assert "it is a classify model" in response.json()["error"]["message"]
    assert client.post("/v1/postures", json={"text": TEXT}).status_code == 200  # the only one


def test_models_describe_the_classifier_heads(client: TestClient) -> None:
    cards = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert cards["picky"]["task"] == "classify"
    assert cards["picky"]["details"]["head"] == "single-label"
    assert cards["picky"]["details"]["abstain_threshold"] == 0.99
    assert cards["topics"]["details"]["architecture"] == "BertForSequenceClassification"
    assert cards["tiny-postures"]["details"]["global_attention"] is True
    assert cards["tiny-postures"]["details"]["thresholds"] == {
        f"Posture {i}": 0.5 for i in range(5)
    }
