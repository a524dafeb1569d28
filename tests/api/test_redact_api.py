"""``POST /v1/redact`` over the tiny NER bundle (16-token windows, so most texts span several):
the redacted text is the engine's output on exactly the entities ``/v1/entities`` answers, no
entity text survives, filters and modes behave as documented, bad options are 422s naming the
field, and redacted spans are counted per label."""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.redaction import Placeholders, Redactor, Span
from service.settings import Settings

TEXTS = [
    "tushar se 2 misal mangwao aur tushar ko bolo",
    "order 3 paneer tikka from sharma sweets to andheri west, 2 masala dosa from saravana bhavan",
    "मुझे मुंबई में दो समोसे चाहिए, डोसा भी 👍🏽 and one crème brûlée",
    "kal 5 baje aana " * 12,
]
KEY = "a-test-key-of-enough-length"
SHAPES = {"mask": r"\*+", "placeholder": r"<LABEL_[0-9]+>", "hash": r"[0-9a-f]{16}", "remove": ""}


@pytest.fixture(scope="module")
def bundles(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redact")
    shutil.copytree(tiny_bundle, root / "tiny-ner")
    return root


@contextmanager
def serving(bundles: Path, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(bundles_dir=bundles, **settings))) as client:
        for _ in range(1200):
            if client.get("/readyz").status_code == 200:
                break
        yield client


@pytest.fixture(scope="module")
def client(bundles: Path) -> Iterator[TestClient]:
    with serving(bundles, redact_hash_key=KEY) as c:
        yield c


@pytest.fixture(scope="module")
def entities(client: TestClient) -> list[list[dict[str, Any]]]:
    answer = client.post("/v1/entities", json={"texts": TEXTS})
    assert answer.status_code == 200
    found = [r["entities"] for r in answer.json()["results"]]
    assert sum(map(len, found)) >= 5  # the random tiny model does find entities here
    return found


def outside(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The pieces of ``text`` between ``spans`` (sorted, disjoint)."""
    cuts = [0, *(x for span in spans for x in span), len(text)]
    return [text[a:b] for a, b in zip(cuts[::2], cuts[1::2], strict=True)]


@pytest.mark.parametrize("mode", ["mask", "placeholder", "hash", "remove"])
def test_redacted_text_is_the_engine_on_the_served_entities(
    client: TestClient, entities: list[list[dict[str, Any]]], mode: str
) -> None:
    answer = client.post("/v1/redact", json={"texts": TEXTS, "mode": mode})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    redactor = Redactor(mode, key=KEY.encode())  # type: ignore[arg-type]
    numbering = Placeholders()
    for text, found, result in zip(TEXTS, entities, body["results"], strict=True):
        spans = [Span(e["label"], e["start"], e["end"], e["score"]) for e in found]
        expected = redactor.redact(text, spans, numbering)
        assert result["text"] == expected.text
        assert [(s["start"], s["end"], s["label"]) for s in result["spans"]] == [
            (e["start"], e["end"], e["label"]) for e in found
        ]
        kept = outside(text, [(s["start"], s["end"]) for s in result["spans"]])
        pieces = [(s["redacted_start"], s["redacted_end"]) for s in result["spans"]]
        assert outside(result["text"], pieces) == kept  # nothing else changed
        for s in result["spans"]:  # each span's characters are replaced as the mode says
            new = result["text"][s["redacted_start"] : s["redacted_end"]]
            assert new != text[s["start"] : s["end"]]
            assert re.fullmatch(SHAPES[mode].replace("LABEL", s["label"]), new), new
            assert mode != "mask" or len(new) == s["end"] - s["start"]
    assert body["mapping"] is None


def test_placeholders_repeat_for_the_same_value_and_the_mapping_is_returned(
    client: TestClient, entities: list[list[dict[str, Any]]]
) -> None:
    body = client.post(
        "/v1/redact", json={"texts": TEXTS, "mode": "placeholder", "return_mapping": True}
    ).json()
    mapping = body["mapping"]
    for text, result in zip(TEXTS, body["results"], strict=True):
        for s in result["spans"]:
            placeholder = result["text"][s["redacted_start"] : s["redacted_end"]]
            assert mapping[placeholder] == text[s["start"] : s["end"]]
    labelled = {(name.rsplit("_", 1)[0], value) for name, value in mapping.items()}
    assert len(labelled) == len(mapping)  # one placeholder per distinct value of a label
    spans = sum(len(r["spans"]) for r in body["results"])
    assert len(mapping) < spans  # the repeated text's repeated entities share theirs


def test_labels_and_min_score_filter_what_is_redacted(
    client: TestClient, entities: list[list[dict[str, Any]]]
) -> None:
    label = (
        entities[0][0]["label"] if entities[0] else next(e for f in entities for e in f)["label"]
    )
    only = client.post("/v1/redact", json={"texts": TEXTS, "labels": [label]}).json()
    for found, result in zip(entities, only["results"], strict=True):
        assert [s["start"] for s in result["spans"]] == [
            e["start"] for e in found if e["label"] == label
        ]
    scores = sorted(e["score"] for f in entities for e in f)
    cut = scores[len(scores) // 2]
    high = client.post("/v1/redact", json={"texts": TEXTS, "min_score": cut}).json()
    kept = [s["score"] for r in high["results"] for s in r["spans"]]
    assert kept and min(kept) >= cut and len(kept) == sum(s >= cut for s in scores)
    per = client.post("/v1/redact", json={"texts": TEXTS, "min_score": {label: 1.0}}).json()
    assert all(s["label"] != label or s["score"] >= 1.0 for r in per["results"] for s in r["spans"])
    nothing = client.post("/v1/redact", json={"text": TEXTS[0], "min_score": 1.5}).json()
    assert nothing["results"][0]["text"] == TEXTS[0] and nothing["results"][0]["spans"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x", "labels": ["NOPE"]}, "labels"),
        ({"text": "x", "min_score": {"NOPE": 0.5}}, "min_score"),
        ({"text": "x", "mode": "shred"}, "mode"),
        ({"text": "x", "mask_char": "**"}, "mask_char"),
    ],
)
def test_bad_options_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/redact", json=body)
    assert answer.status_code == 422
    assert field in answer.text


def test_hash_is_refused_without_a_key_and_keyed_with_one(
    bundles: Path, client: TestClient
) -> None:
    with serving(bundles) as keyless:
        refused = keyless.post("/v1/redact", json={"text": TEXTS[0], "mode": "hash"})
    assert refused.status_code == 422
    assert "INFER_REDACT_HASH_KEY" in refused.text and "mode" in refused.text
    body = client.post("/v1/redact", json={"text": TEXTS[1], "mode": "hash"}).json()
    for s in body["results"][0]["spans"]:
        value = TEXTS[1][s["start"] : s["end"]].encode()
        digest = hmac.new(KEY.encode(), value, hashlib.sha256).hexdigest()[:16]
        assert body["results"][0]["text"][s["redacted_start"] : s["redacted_end"]] == digest


def test_truncate_leaves_the_unread_end_as_it_was_and_says_so(client: TestClient) -> None:
    body = client.post("/v1/redact", json={"text": TEXTS[3], "truncation": "truncate"}).json()
    result = body["results"][0]
    assert result["truncated"] and result["windows"] == 1 and result["tokens"] > 14
    tail = TEXTS[3][len(TEXTS[3]) // 2 :]
    assert result["text"].endswith(tail)  # not read, so not redacted: the flag says so
    refused = client.post("/v1/redact", json={"text": TEXTS[3], "truncation": "error"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "text"


def test_redacted_spans_are_counted_per_label(client: TestClient) -> None:
    body = client.post("/v1/redact", json={"texts": TEXTS}).json()
    labels = {s["label"] for r in body["results"] for s in r["spans"]}
    metrics = client.get("/metrics").text
    for label in labels:
        series = f'infer_redacted_spans_total{{label="{label}",model="tiny-ner",version="1"}}'
        assert series in metrics


def test_the_hash_key_can_come_from_a_file_which_must_exist(bundles: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "redact.key"
    key_file.write_text(f"  {KEY}\n")
    settings = Settings(bundles_dir=bundles, redact_hash_key_file=key_file)
    assert settings.redact_key() == KEY.encode()
    with pytest.raises(ValueError, match="redact_hash_key_file"):
        Settings(bundles_dir=bundles, redact_hash_key_file=tmp_path / "missing.key")
    assert Settings(bundles_dir=bundles).redact_key() is None
