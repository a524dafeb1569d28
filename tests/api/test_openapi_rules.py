"""The served OpenAPI document says what the deployment accepts: a body it calls valid is
answered 2xx, one it calls invalid gets a 4xx (what schemathesis's positive_data_acceptance and
negative_data_rejection check), on /v1 and on the v2 infer paths of every loaded model."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from service.app import create_app
from service.registry import ModelRegistry
from service.schemas import NOT_BLANK, WHITESPACE, WORD
from service.settings import Settings

MODELS = ["ner-food", "intent-food", "postures-legal", "postures-tfidf", "nlu-food"]


def test_the_whitespace_class_is_exactly_str_isspace_in_both_regex_dialects() -> None:
    # only \uXXXX escapes and ranges of them: ECMA-262 and Python's re read them alike
    assert re.fullmatch(r"(\\u[0-9a-f]{4}(-\\u[0-9a-f]{4})?)+", WHITESPACE)
    matched = re.compile(f"[{WHITESPACE}]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(matched.fullmatch(char)) == char.isspace(), hex(code)
    assert re.search(NOT_BLANK, " \x1c\u3000") is None and re.search(NOT_BLANK, "\ufeff")
    assert re.search(WORD, "a\x85b") is None and re.search(WORD, "a\ufeffb")


@pytest.fixture(scope="module")
def served(default_bundles_with_joint: Path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    config = Settings(
        bundles_dir=default_bundles_with_joint,
        models=MODELS,
        max_text_chars=60,
        max_document_chars=90,
    )
    with TestClient(create_app(config, ModelRegistry(config))) as client:
        contract = client.get("/openapi.json").json()  # while loading: the contract alone
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").status_code == 200
        assert "/v2/models/{name}/infer" in contract["paths"]
        yield client, client.get("/openapi.json").json()


def _valid(document: dict[str, Any], path: str, body: Any) -> bool:
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    wrapped = {"components": document["components"], **schema["schema"]}
    return Draft202012Validator(wrapped).is_valid(body)


TEXT = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["order 2 dosa"]}
CASES: list[tuple[str, Any, bool]] = [
    # several classifiers serve /v1/classify and none is its own: model must be named
    ("/v1/classify", {"text": "where is my order?"}, False),
    ("/v1/classify", {"text": "where is my order?", "model": "intent-food"}, True),
    ("/v1/classify", {"text": "\x1c\u3000 ", "model": "intent-food"}, False),  # blank (Python)
    ("/v1/classify", {"text": "\ufeff", "model": "intent-food"}, True),  # not blank to Python
    ("/v1/classify", {"text": "hi", "model": "intent-food", "head": "intent"}, False),
    ("/v1/classify", {"text": "hi", "model": "nlu-food", "head": "intent"}, True),
    ("/v1/classify", {"text": "hi", "model": "nlu-food", "head": "nope"}, False),
    ("/v1/classify", {"text": "x" * 91, "model": "postures-tfidf"}, False),
    ("/v1/classify", {"text": "x" * 61, "model": "nlu-food"}, False),
    ("/v1/classify", {"text": "x" * 61, "model": "intent-food"}, True),
    ("/v1/postures", {"texts": ["motion to dismiss", "\u2028"]}, False),
    ("/v1/postures", {"texts": ["motion to dismiss"] * 65}, False),
    ("/v1/entities", {"text": " "}, True),  # the NER model reads a blank text
    ("/v1/entities", {"text": " ", "model": "nlu-food"}, False),  # the joint model does not
    ("/v1/entities", {"words": [[]], "model": "nlu-food"}, False),
    ("/v1/entities", {"text": "x", "labels": [""]}, False),
    ("/v1/entities", {"text": "x", "labels": ["FOOD"], "min_score": {"FOOD": 0.5}}, True),
    ("/v1/entities", {"text": "x", "min_score": {"x-other": 0}}, False),
    ("/v1/entities", {"words": [["a b"]]}, False),
    ("/v1/entities", {"text": "order 2 dosa", "model": "ner-food@1"}, True),  # pinned version
    ("/v1/entities", {"text": "order 2 dosa", "model": "ner-food@99"}, False),  # not loaded
    ("/v1/entities", {"words": [["a", "\ufeffb"]]}, True),
    ("/v1/redact", {"text": "order 2 dosa", "mode": "hash"}, False),  # no key configured
    ("/v1/redact", {"text": "order 2 dosa", "mode": "mask"}, True),
    ("/v1/parse", {"text": " "}, False),
    ("/v1/parse", {"text": "order 2 dosa", "labels": ["FOOD"]}, True),
    ("/v2/models/ner-food/infer", {"inputs": [TEXT]}, True),
    ("/v2/models/ner-food/infer", {"inputs": [TEXT], "parameters": {"top_k": 1}}, False),
    ("/v2/models/intent-food/infer", {"inputs": [TEXT], "parameters": {"top_k": 1.0}}, True),
    ("/v2/models/intent-food/infer", {"inputs": [{**TEXT, "shape": [2]}]}, False),
    ("/v2/models/intent-food/infer", {"inputs": [{**TEXT, "data": [["x"]]}]}, False),
    ("/v2/models/intent-food/infer", {"inputs": [{**TEXT, "data": [" "]}]}, False),
    ("/v2/models/intent-food/infer", {"inputs": [TEXT], "outputs": [{"name": "x"}]}, False),
    ("/v2/models/intent-food/infer", None, False),  # no body
]


@pytest.mark.parametrize(("path", "body", "valid"), CASES)
def test_the_document_and_the_answer_agree(
    served: tuple[TestClient, dict[str, Any]], path: str, body: Any, valid: bool
) -> None:
    client, document = served
    assert _valid(document, path, body) is valid
    answer = client.post(path, json=body) if body is not None else client.post(path)
    assert (200 <= answer.status_code < 300) is valid, answer.text
    assert valid or answer.status_code in (400, 404, 422), answer.text


def test_the_v2_infer_template_becomes_one_path_per_model(
    served: tuple[TestClient, dict[str, Any]],
) -> None:
    _, document = served
    infer = sorted(p for p in document["paths"] if p.startswith("/v2/models/"))
    assert [p for p in infer if p.endswith("/infer")] == sorted(
        [f"/v2/models/{m}/infer" for m in MODELS]
        + [f"/v2/models/{m}/versions/{{version}}/infer" for m in MODELS]
    )
    examples = document["components"]["schemas"]["ClassifyRequest"]["examples"]
    assert all(_valid(document, "/v1/classify", e) for e in examples)


def test_parse_answered_by_the_intent_and_ner_pair_has_its_rules(default_bundles_dir: Path) -> None:
    config = Settings(bundles_dir=default_bundles_dir, models=["ner-food", "intent-food"])
    with TestClient(create_app(config, ModelRegistry(config))) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        document = client.get("/openapi.json").json()
        for body, valid in (
            ({"text": "\u3000"}, False),  # the intent model refuses a blank text
            ({"text": "order 2 dosa", "labels": ["FOOD"]}, True),
            ({"text": "order 2 dosa", "labels": ["PER"]}, False),
            ({"text": "x", "model": "nlu-food"}, False),  # not loaded: 404
        ):
            assert _valid(document, "/v1/parse", body) is valid, body
            answer = client.post("/v1/parse", json=body)
            assert (answer.status_code == 200) is valid, answer.text
