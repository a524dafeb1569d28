"""``/v1/entities`` request options on the tiny NER bundle: ``labels`` and ``min_score`` keep
exactly the entities of the unfiltered answer that pass them; ``return_alternatives`` adds the
next-best types with label marginals; the default answer is unchanged (no new keys)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from families.ner.options import entity_types
from families.ner.spec import NerManifest
from service.app import create_app
from service.bundle import read_manifest
from service.settings import Settings

TEXTS = [
    "tushar se 2 misal mangwao aur tushar ko bolo",
    "order 3 paneer tikka from sharma sweets to andheri west",
    "मुझे मुंबई में दो समोसे चाहिए, डोसा भी",
    "kal 5 baje aana " * 8,
    "2 misal pav",
]


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("options")
    shutil.copytree(tiny_bundle, root / "tiny-ner")
    with TestClient(create_app(Settings(bundles_dir=root))) as client:
        for _ in range(1200):
            if client.get("/readyz").status_code == 200:
                break
        yield client


@pytest.fixture(scope="module")
def plain(served: TestClient) -> list[list[dict[str, Any]]]:
    answer = served.post("/v1/entities", json={"texts": TEXTS})
    found = [r["entities"] for r in answer.json()["results"]]
    assert sum(map(len, found)) >= 5
    assert all(set(e) == {"label", "start", "end", "text", "score"} for f in found for e in f)
    return found


def ask(client: TestClient, **options: Any) -> list[list[dict[str, Any]]]:
    answer = client.post("/v1/entities", json={"texts": TEXTS, **options})
    assert answer.status_code == 200, answer.text
    return [r["entities"] for r in answer.json()["results"]]


def test_labels_and_min_score_keep_the_passing_entities(
    served: TestClient, plain: list[list[dict[str, Any]]]
) -> None:
    label = next(e for f in plain for e in f)["label"]
    assert ask(served, labels=[label]) == [[e for e in f if e["label"] == label] for f in plain]
    cut = float(np.median([e["score"] for f in plain for e in f]))
    assert ask(served, min_score=cut) == [[e for e in f if e["score"] >= cut] for f in plain]
    per = ask(served, min_score={label: cut})
    assert per == [[e for e in f if e["label"] != label or e["score"] >= cut] for f in plain]
    assert ask(served, labels=[label], min_score=2.0) == [[] for _ in plain]


def test_unknown_labels_are_refused(served: TestClient) -> None:
    answer = served.post("/v1/entities", json={"text": "x", "labels": ["FOOD", "NOPE"]})
    assert answer.status_code == 422 and "labels" in answer.text and "NOPE" in answer.text


def test_alternatives_are_the_other_types_by_label_marginal(
    served: TestClient, plain: list[list[dict[str, Any]]], tiny_bundle: Path
) -> None:
    manifest = read_manifest(tiny_bundle)
    assert isinstance(manifest, NerManifest)
    types = entity_types(manifest.labels)
    full = ask(served, return_alternatives=len(types))
    two = ask(served, return_alternatives=2)
    for found, with_all, with_two in zip(plain, full, two, strict=True):
        assert [{k: e[k] for k in found[0]} for e in with_all] == found if found else True
        for e, e2 in zip(with_all, with_two, strict=True):
            alts = e["alternatives"]
            assert {a["label"] for a in alts} == set(types) - {e["label"]}
            probs = [a["probability"] for a in alts]
            assert probs == sorted(probs, reverse=True)
            assert e["score"] + sum(probs) <= 1.0 + 1e-5  # disjoint events of the same words
            assert e2["alternatives"] == alts[:2]


def test_every_result_reports_tokens_and_windows(served: TestClient) -> None:
    results = served.post("/v1/entities", json={"texts": TEXTS}).json()["results"]
    assert all(r["tokens"] > 0 and r["windows"] >= 1 and not r["truncated"] for r in results)
    assert results[4]["windows"] == 1 < results[3]["windows"]  # 14 content tokens a window


def test_truncation_error_refuses_a_text_over_one_window(served: TestClient) -> None:
    short = served.post("/v1/entities", json={"text": TEXTS[4], "truncation": "error"})
    assert short.status_code == 200
    refused = served.post("/v1/entities", json={"texts": TEXTS[3:], "truncation": "error"})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "texts[0]" and "more than one window of 14" in error["message"]
    assert error["limit"] == 14


def test_truncate_reads_the_first_window_only_and_says_so(
    served: TestClient, plain: list[list[dict[str, Any]]]
) -> None:
    results = served.post("/v1/entities", json={"texts": TEXTS, "truncation": "truncate"}).json()[
        "results"
    ]
    windowed = served.post("/v1/entities", json={"texts": TEXTS}).json()["results"]
    for cut, full in zip(results, windowed, strict=True):
        assert cut["tokens"] == full["tokens"]
        if full["windows"] == 1:
            assert cut == full  # a text of one window is untouched
        else:
            assert cut["truncated"] and cut["windows"] == 1
    long_text = TEXTS[3]
    read = max(e["end"] for e in results[3]["entities"]) if results[3]["entities"] else 0
    assert read < len(long_text) // 2  # 14 content tokens of ~40 were read
    metrics = served.get("/metrics").text
    assert 'infer_truncated_texts_total{model="tiny-ner",version="1"}' in metrics


WORDS = [["Tushar", "se", "2", "misal", "mangwao"], ["order", "3", "paneer", "tikka", "डोसा"]]


def test_pre_split_words_are_joined_by_single_spaces_and_carry_word_ranges(
    served: TestClient,
) -> None:
    joined = [" ".join(w) for w in WORDS]
    by_text = served.post("/v1/entities", json={"texts": joined}).json()["results"]
    answer = served.post("/v1/entities", json={"words": WORDS})
    assert answer.status_code == 200, answer.text
    by_words = answer.json()["results"]
    found = 0
    for words, text, plain_result, result in zip(WORDS, joined, by_text, by_words, strict=True):
        assert [
            {k: e[k] for k in ("label", "start", "end", "text", "score")}
            for e in result["entities"]
        ] == plain_result["entities"]
        for e in result["entities"]:
            found += 1
            covered = " ".join(words[e["word_start"] : e["word_end"]])
            assert e["word_start"] < e["word_end"] and e["text"] in covered
            assert text.index(covered) <= e["start"]  # the first covered word holds the start
    assert found > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"words": [["ok", "two words"]]}, "words[0][1]"),
        ({"words": [["ok"], ["", "x"]]}, "words[1][0]"),
        ({"words": [["ok"]], "text": "ok"}, "exactly one of 'text' or 'texts' or 'words'"),
        ({"words": []}, "words"),
    ],
)
def test_bad_words_are_422(served: TestClient, body: dict[str, Any], field: str) -> None:
    answer = served.post("/v1/entities", json=body)
    assert answer.status_code == 422 and field in answer.text, answer.text
