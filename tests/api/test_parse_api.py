"""``/v1/parse``: the intent and NER models answer one request together, concurrently, with
exactly what their own routes answer; which bundles it uses is a setting, refused clearly."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.bundle import BundleError
from service.registry import ModelRegistry
from service.settings import Settings
from tests.run_hooks import RunHooks

TEXTS = ["order 2 misal from tushar", "where is my order", "hello"]
INTENT, MULTI = "bert-single-pt", "bert-multi-dir"


@pytest.fixture(scope="module")
def bundles(
    tiny_bundle: Path,
    classifier_bundles: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The tiny NER bundle, a single-label (intent) and a multi-label classifier."""
    root = tmp_path_factory.mktemp("parse")
    shutil.copytree(tiny_bundle, root / "tiny-ner")
    for case in (INTENT, MULTI):
        shutil.copytree(classifier_bundles(case), root / case)
    return root


@contextmanager
def serving(bundles: Path, hooks: RunHooks | None = None, **settings: Any) -> Iterator[TestClient]:
    config = Settings(bundles_dir=bundles, **settings)
    registry = ModelRegistry(config, (hooks or RunHooks()).families())
    with TestClient(create_app(config, registry)) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def test_parse_answers_what_classify_and_entities_answer(bundles: Path) -> None:
    with serving(bundles, models=["tiny-ner", INTENT]) as client:
        parsed = client.post("/v1/parse", json={"texts": TEXTS})
        classes = client.post("/v1/classify", json={"texts": TEXTS, "return_scores": True})
        entities = client.post("/v1/entities", json={"texts": TEXTS})
        one = client.post("/v1/parse", json={"text": TEXTS[0], "top_k": 2})
    assert parsed.status_code == 200, parsed.text
    body = parsed.json()
    assert body["intent_model"]["name"] == INTENT and body["ner_model"]["name"] == "tiny-ner"
    for result, cls, ents in zip(
        body["results"], classes.json()["results"], entities.json()["results"], strict=True
    ):
        scores = cls["scores"]
        assert [r["name"] for r in result["ranking"]] == sorted(scores, key=lambda k: -scores[k])
        assert {r["name"]: r["confidence"] for r in result["ranking"]} == scores
        top = cls["labels"][0]
        assert result["intent"] == {"name": top["label"], "confidence": top["probability"]}
        assert result["entities"] == ents["entities"]
    assert len(one.json()["results"]) == 1 and len(one.json()["results"][0]["ranking"]) == 2


def test_both_models_run_at_the_same_time(bundles: Path) -> None:
    """The intent model's batch waits for the NER model's batch to start: sequential calls
    would time out here, concurrent ones meet."""
    hooks = RunHooks()
    with serving(bundles, hooks, models=["tiny-ner", INTENT]) as client:
        ner_started = threading.Event()
        met: list[bool] = []

        def ner_first(ner_run: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
            ner_started.set()
            return ner_run(items)

        def intent_waits(
            intent_run: Callable[[list[Any]], list[Any]], items: list[Any]
        ) -> list[Any]:
            met.append(ner_started.wait(timeout=5))
            return intent_run(items)

        hooks.set("tiny-ner", ner_first)
        hooks.set(INTENT, intent_waits)
        answer = client.post("/v1/parse", json={"text": "order 2 misal"})
    assert answer.status_code == 200
    assert met == [True]


def test_no_intent_model_is_a_clear_404(bundles: Path) -> None:
    with serving(bundles, models=["tiny-ner", MULTI]) as client:
        answer = client.post("/v1/parse", json={"text": "hello"})
    assert answer.status_code == 404
    assert "single-label" in answer.json()["error"]["message"]
    assert "INFER_PARSE_INTENT_MODEL" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"parse_intent_model": MULTI}, "INFER_PARSE_INTENT_MODEL"),
        ({"parse_intent_model": "absent"}, "INFER_PARSE_INTENT_MODEL='absent'"),
        ({"parse_intent_model": INTENT, "parse_ner_model": "absent"}, "INFER_PARSE_NER_MODEL"),
        ({"parse_ner_model": INTENT}, "INFER_PARSE_NER_MODEL"),
    ],
)
def test_settings_that_name_the_wrong_bundle_stop_start_up(
    bundles: Path, settings: dict[str, str], named: str
) -> None:
    """Checked at start-up (issue 21): the process exits instead of 404 on every /v1/parse."""
    with pytest.raises(BundleError) as refused, serving(bundles, **settings):
        pass
    assert named in str(refused.value)
    assert "/v1/parse could never answer" in str(refused.value)


def test_bad_bodies_name_the_field(bundles: Path) -> None:
    with serving(bundles, models=["tiny-ner", INTENT]) as client:
        blank = client.post("/v1/parse", json={"text": "  "})
        bad_k = client.post("/v1/parse", json={"text": "hi", "top_k": 0})
        model = client.post("/v1/parse", json={"text": "hi", "model": INTENT})
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "text"
    assert bad_k.status_code == 422 and "top_k" in bad_k.text
    assert model.status_code == 422 and "model" in model.text


def test_parse_filters_entities_like_the_entities_route(bundles: Path) -> None:
    with serving(bundles, models=["tiny-ner", INTENT]) as client:
        plain = client.post("/v1/entities", json={"texts": TEXTS}).json()["results"]
        label = next(e for r in plain for e in r["entities"])["label"]
        options = {"labels": [label], "min_score": 0.1}
        filtered = client.post("/v1/entities", json={"texts": TEXTS, **options}).json()["results"]
        parsed = client.post("/v1/parse", json={"texts": TEXTS, **options}).json()["results"]
        refused = client.post("/v1/parse", json={"text": "x", "labels": ["NOPE"]})
    assert [p["entities"] for p in parsed] == [f["entities"] for f in filtered]
    assert all(e["label"] == label and e["score"] >= 0.1 for p in parsed for e in p["entities"])
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "labels"
