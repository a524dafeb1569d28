"""A joint bundle over HTTP: ``/v1/parse`` answers intent, entities and every other head from ONE
encoder run per batch (counted), equal to what ``/v1/entities`` and ``/v1/classify`` (``head``)
answer for the same bundle; the two-bundle parse and unnamed lookups keep working."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from export.cli import main
from tests.api.test_parse_api import INTENT, serving
from tests.joint_families import CASES, source_args, write_joint

JOINT = "nlu-tiny"
TEXTS = ["order 2 misal from tushar", "Đặt cho tôi 2 bánh mì ở Hà Nội", "call inayat at 5",
         "Врховни суд у Београду", "hello there", "मुझे दो समोसे चाहिए", "track my order",
         "open the app"]  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundles(
    tiny_bundle: Path,
    classifier_bundles: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A joint bundle beside the tiny NER bundle and a single-label (intent) classifier."""
    root = tmp_path_factory.mktemp("joint-api")
    case = CASES[0]
    ckpt = write_joint(root / "ckpt", case)
    args = [*source_args(ckpt, case.form), "--out", str(root / "models" / JOINT), "--name", JOINT]
    assert main(["joint", *args, "--max-length", "64", "--stride", "16"]) == 0
    shutil.copytree(tiny_bundle, root / "models" / "tiny-ner")
    shutil.copytree(classifier_bundles(INTENT), root / "models" / INTENT)
    return root / "models"


def _count_runs(client: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every ONNX call of model ``name``."""
    session = client.app.state.registry.models[name].runtime.session
    calls: list[int] = []
    run = session.run

    def counted(inputs: Any) -> Any:
        calls.append(int(inputs["input_ids"].shape[0]))
        return run(inputs)

    monkeypatch.setattr(session, "run", counted)
    return calls


def test_parse_is_one_encoder_run_and_equals_the_other_routes(
    bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(bundles) as client:
        calls = _count_runs(client, JOINT, monkeypatch)
        parsed = client.post("/v1/parse", json={"texts": TEXTS, "model": JOINT, "top_k": 3})
        assert parsed.status_code == 200, parsed.text
        # Every text's window runs through the encoder once for all heads: as many rows (and
        # the same length-bucketed calls) as the entities alone take.
        assert sum(calls) == len(TEXTS)
        parse_calls = list(calls)
        entities = client.post("/v1/entities", json={"texts": TEXTS, "model": JOINT})
        assert calls[len(parse_calls) :] == parse_calls
        pair_calls = [_count_runs(client, m, monkeypatch) for m in ("tiny-ner", INTENT)]
        client.post("/v1/parse", json={"texts": TEXTS})
        assert all(sum(c) >= len(TEXTS) for c in pair_calls)  # two encoders, each every text
        asked = {"texts": TEXTS, "model": JOINT, "return_scores": True}
        intents = client.post("/v1/classify", json=asked)
        commands = client.post("/v1/classify", json={**asked, "head": "command"})
        models = client.get("/v1/models").json()
    body = parsed.json()
    assert body["intent_model"]["name"] == body["ner_model"]["name"] == JOINT
    assert commands.json()["head"] == "single-label"
    for result, ents, intent, command in zip(
        body["results"],
        entities.json()["results"],
        intents.json()["results"],
        commands.json()["results"],
        strict=True,
    ):
        assert result["entities"] == ents["entities"]
        scores = intent["scores"]
        assert [r["name"] for r in result["ranking"]] == sorted(scores, key=lambda k: -scores[k])[
            :3
        ]
        assert result["intent"]["name"] == intent["labels"][0]["label"]
        head = result["heads"]["command"]
        assert head["labels"] == command["labels"] and set(result["heads"]) == {"command"}
        assert {r["name"]: r["confidence"] for r in head["ranking"]} == command["scores"]
    card = next(m for m in (models["models"] if isinstance(models, dict) else models)
                if m["name"] == JOINT)  # fmt: skip
    assert card["task"] == "joint"
    assert set(card["details"]["sequence_heads"]) == {"intent", "command"}
    assert card["details"]["token_head"]["masked_labels"] == ["I-PHONE"]


def test_the_two_bundle_parse_and_unnamed_lookups_are_unchanged(
    bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(bundles) as client:
        calls = _count_runs(client, JOINT, monkeypatch)
        pair = client.post("/v1/parse", json={"texts": TEXTS})
        entities = client.post("/v1/entities", json={"texts": TEXTS})
    assert pair.status_code == 200 and entities.status_code == 200
    assert (
        pair.json()["ner_model"]["name"] == "tiny-ner"
        and pair.json()["results"][0]["heads"] is None
    )
    assert entities.json()["model"]["name"] == "tiny-ner" and calls == []
    with serving(bundles, models=[JOINT]) as client:  # the only model: taken unnamed everywhere
        alone = client.post("/v1/parse", json={"text": TEXTS[0]})
        tagged = client.post("/v1/entities", json={"text": TEXTS[0]})
    assert alone.json()["intent_model"]["name"] == JOINT
    assert tagged.json()["model"]["name"] == JOINT
    with serving(bundles, models=[JOINT, INTENT, "tiny-ner"], parse_intent_model=JOINT) as client:
        configured = client.post("/v1/parse", json={"text": TEXTS[0]})
    assert configured.json()["intent_model"]["name"] == JOINT


def test_bad_heads_and_models_are_refused_by_field(bundles: Path) -> None:
    with serving(bundles) as client:
        unknown = client.post("/v1/classify", json={"text": "hi", "model": JOINT, "head": "x"})
        not_joint = client.post("/v1/classify", json={"text": "hi", "model": INTENT, "head": "x"})
        parse_other = client.post("/v1/parse", json={"text": "hi", "model": INTENT})
        blank = client.post("/v1/parse", json={"text": "  ", "model": JOINT})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "head"
    assert "command" in unknown.json()["error"]["message"]
    assert not_joint.status_code == 422 and not_joint.json()["error"]["field"] == "head"
    assert parse_other.status_code == 404 and parse_other.json()["error"]["field"] == "model"
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "text"


def test_the_batch_scorer_writes_entities_and_heads_and_scores_entities(
    bundles: Path, tmp_path: Path
) -> None:
    import json

    from service.batch.models import load_model
    from service.batch.runner import Options, run
    from service.settings import Settings

    model = load_model(Settings(bundles_dir=bundles, models=[JOINT]), JOINT)
    with serving(bundles) as client:
        answers = client.post("/v1/parse", json={"texts": TEXTS, "model": JOINT}).json()
    expected = answers["results"]
    source = tmp_path / "in.jsonl"
    # gold: the served entities themselves, except the first text's, which are left out
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "entities": [] if i == 0 else r["entities"]}) + "\n"
            for i, (t, r) in enumerate(zip(TEXTS, expected, strict=True))
        )
    )
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    summary = run(
        model, Options(input=source, output=out, errors=errors, progress=False, eval=True)
    )
    assert summary.written == len(TEXTS) and summary.errors == 0
    records = {r["id"]: r["result"] for r in map(json.loads, out.read_text().splitlines())}
    for i, parsed in enumerate(expected):
        assert records[i]["entities"] == parsed["entities"]
        intent = [parsed["intent"]["name"]] if parsed["intent"] else []
        assert [c["label"] for c in records[i]["heads"]["intent"]] == intent
        assert records[i]["heads"]["command"] == parsed["heads"]["command"]["labels"]
    report = summary.evaluation
    assert report is not None
    missed = len(expected[0]["entities"])
    found = sum(len(r["entities"]) for r in expected)
    assert missed > 0 and found > missed  # the case must be able to fail
    assert report["micro_f1"] < 1.0


def test_open_inference_protocol_answers_a_joint_bundles_entities(bundles: Path) -> None:
    """/v2 infer on a joint bundle: its token head's entities, equal to /v1/entities (was a 500:
    the protocol layer took every bundle off the NER route for a classifier)."""
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": TEXTS[:2]}]}
    with serving(bundles) as client:
        v2 = client.post(f"/v2/models/{JOINT}/infer", json=body)
        v1 = client.post("/v1/entities", json={"texts": TEXTS[:2], "model": JOINT})
        meta = client.get(f"/v2/models/{JOINT}").json()
    assert v2.status_code == 200, v2.text
    (entities,) = [o for o in v2.json()["outputs"] if o["name"] == "entities"]
    assert [json.loads(e) for e in entities["data"]] == [
        r["entities"] for r in v1.json()["results"]
    ]
    assert [o["name"] for o in meta["outputs"]] == ["entities"]


def test_a_text_without_content_tokens_is_answered_by_every_head(bundles: Path) -> None:
    """ "\b" is not blank, but the tokenizer finds nothing in it: the heads still answer (it was
    a 500 found by schemathesis), alone and beside other texts in one batch."""
    with serving(bundles) as client:
        alone = client.post("/v1/parse", json={"text": "\b", "model": JOINT})
        mixed = client.post("/v1/entities", json={"texts": ["\b", TEXTS[0]], "model": JOINT})
        head = client.post(
            "/v1/classify", json={"texts": ["\x89", "hi"], "model": JOINT, "return_scores": True}
        )
    assert alone.status_code == 200, alone.text
    parsed = alone.json()["results"][0]
    assert parsed["entities"] == [] and parsed["intent"] is not None
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["results"][0]["entities"] == []
    assert head.status_code == 200, head.text
    scores = [r["scores"] for r in head.json()["results"]]
    assert all(scores) and all(0 <= p <= 1 for s in scores for p in s.values()), scores
