"""A span bundle served end to end: ``/v1/entities`` (overlapping types), the entities of
``/v1/parse``, the batch scorer with ``--eval``, and ``python -m export calibrate`` on a tiny
validation file."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from export.cli import main as export_main
from families.ner.runtime import Entity
from families.span.decoding import SpanRule
from families.span.runtime import SpanRuntime
from families.span.spec import SpanManifest
from families.span.thresholds import GRID
from service.app import create_app
from service.batch.__main__ import main as batch_main
from service.bundle import BundleError, manifest_adapter, read_manifest
from service.families import SERVING_FAMILIES
from service.runtime.session import OnnxSession
from service.settings import Settings
from tests.families import MULTILINGUAL, source_args
from tests.span_families import TYPES, write_span_model

WORDS = " ".join(MULTILINGUAL).split()


@pytest.fixture(scope="module")
def span_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_span_model(tmp_path_factory.mktemp("span"), "bert")
    out = root / "bundles" / "tiny-span"
    args = [*source_args(root, "dir"), "--out", str(out), "--max-length", "24", "--stride", "6"]
    assert export_main(["span", *args]) == 0
    return out


def runtime_of(bundle: Path) -> SpanRuntime:
    manifest = read_manifest(bundle)
    assert isinstance(manifest, SpanManifest)
    return SpanRuntime(manifest, bundle, OnnxSession(bundle / "model.onnx", "span_probs", 1))


@pytest.fixture()
def client(span_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(bundles_dir=span_bundle.parent))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def spanned(e: Entity) -> dict[str, object]:
    return {"start": e.start, "end": e.end, "label": e.label}


def texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, rng.randint(3, 30))) for _ in range(count)]


def test_entities_route_serves_overlapping_types_as_the_runtime(
    span_bundle: Path, client: TestClient
) -> None:
    sample = [*MULTILINGUAL, ""]
    card = client.get("/v1/models").json()["models"][0]
    assert card["task"] == "span" and card["details"]["head"] == "span"
    answer = client.post("/v1/entities", json={"texts": sample})
    assert answer.status_code == 200
    got = [r["entities"] for r in answer.json()["results"]]
    expected = [
        [{k: v for k, v in vars(e).items() if k != "alternatives"} for e in found]
        for found in runtime_of(span_bundle).predict(sample).entities
    ]  # alternatives are answered only when asked for (return_alternatives)
    assert got == expected and got[-1] == []
    assert any(
        a["label"] != b["label"] and a["start"] < b["end"] and b["start"] < a["end"]
        for found in got
        for i, a in enumerate(found)
        for b in found[i + 1 :]
    )
    assert all(
        t[e["start"] : e["end"]] == e["text"] for t, f in zip(sample, got, strict=True) for e in f
    )
    too_long = client.post("/v1/entities", json={"text": "x" * 20_001})
    assert too_long.status_code == 422 and "text" in too_long.text


def test_a_service_without_the_span_family_refuses_its_bundles_by_task(span_bundle: Path) -> None:
    """Why span bundles stay schema 4 (docs/span.md): a service that predates the family refuses
    them at load by the task it does not know, naming it; it can never misread one."""
    before = manifest_adapter(f.manifest for f in SERVING_FAMILIES if f.task != "span")
    assert read_manifest(span_bundle).schema_version == 4
    with pytest.raises(BundleError, match="invalid manifest") as refused:
        read_manifest(span_bundle, before)
    assert "'span'" in str(refused.value) and "'ner'" in str(refused.value)


def test_parse_takes_its_entities_from_a_span_bundle(
    span_bundle: Path, classifier_bundles: Callable[[str], Path], tmp_path: Path
) -> None:
    """The NER side of ``/v1/parse`` picks its model by route (``ner``), which serves span
    bundles: its entities are what ``/v1/entities`` answers, overlapping types included."""
    shutil.copytree(span_bundle, tmp_path / span_bundle.name)
    shutil.copytree(classifier_bundles("bert-single-pt"), tmp_path / "intent")
    sample = MULTILINGUAL[:4]
    with TestClient(create_app(Settings(bundles_dir=tmp_path))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        parsed = client.post("/v1/parse", json={"texts": sample})
        entities = client.post("/v1/entities", json={"texts": sample})
    assert parsed.status_code == 200, parsed.text
    assert parsed.json()["ner_model"]["name"] == span_bundle.name
    got = [r["entities"] for r in parsed.json()["results"]]
    assert got == [r["entities"] for r in entities.json()["results"]]
    assert any(got)


def test_batch_scorer_answers_and_evaluates_like_the_route(
    span_bundle: Path, client: TestClient, tmp_path: Path
) -> None:
    docs = texts(12, seed=3)
    runtime = runtime_of(span_bundle)
    predicted = runtime.predict(docs).entities
    gold = [[spanned(e) for e in f[1:]] for f in predicted]
    data = tmp_path / "in.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "entities": g}, ensure_ascii=False) + "\n"
            for i, (t, g) in enumerate(zip(docs, gold, strict=True))
        )
    )
    out = tmp_path / "out.jsonl"
    args = ["--bundles", str(span_bundle.parent), "--input", str(data), "--output", str(out)]
    assert batch_main([*args, "--eval", "--no-progress"]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    for record, text in zip(sorted(scored, key=lambda r: r["id"]), docs, strict=True):
        http = client.post("/v1/entities", json={"text": text}).json()["results"][0]
        assert record["result"] == http
    figures = json.loads((tmp_path / "out.jsonl.eval.json").read_text())
    found = sum(len(f) for f in predicted)
    true = sum(len(g) for g in gold)  # every gold span is predicted; the first of each is extra
    assert figures["micro_f1"] == round(2 * true / (true + found), 4)


def test_calibration_ships_cuts_that_beat_half_and_the_report(
    span_bundle: Path, tmp_path: Path
) -> None:
    """Gold: what the model itself finds at per-type cuts 0.76 / 0.62 / 0.7; calibration must
    recover cuts that serve the gold better than 0.5, out of fold, and say so in its report."""
    bundle = tmp_path / "tiny-span"
    shutil.copytree(span_bundle, bundle)
    runtime = runtime_of(bundle)
    truth_rule = SpanRule(
        start=GRID[[37, 30, 34]], end=GRID[[37, 30, 34]], inside=GRID[[37, 30, 34]]
    )
    runtime.rule = truth_rule
    docs = texts(60, seed=5)
    gold = runtime.predict(docs).entities
    data = tmp_path / "valid.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "entities": [spanned(e) for e in g]}, ensure_ascii=False) + "\n"
            for t, g in zip(docs, gold, strict=True)
        )
    )
    args = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--bootstrap", "200"]
    assert export_main(args) == 0
    manifest = read_manifest(bundle)
    assert isinstance(manifest, SpanManifest)
    calibration = manifest.span.calibration
    assert calibration is not None and calibration.documents == 60
    assert calibration.method != "at_0.5"
    options = calibration.options
    assert options[calibration.method].oof_micro_f1 > options["at_0.5"].oof_micro_f1
    report = json.loads((bundle / "calibration_report.json").read_text())
    assert {Path(p).name for p in report["files"].values()} == {
        "calibration_report.json",
        "calibration_report.md",
        "calibration_report_f1_by_cut.png",
    }
    assert all(Path(p).parent == bundle for p in report["files"].values())
    shipped = report["shipped"]["thresholds"]
    assert [t.start for t in manifest.span.thresholds] == [shipped[label] for label in TYPES]
    # the service, reloaded, decodes with the shipped cuts: its F1 against gold is the report's
    served = runtime_of(bundle).predict(docs).entities
    pairs = [
        ({(e.label, e.start, e.end) for e in s}, {(e.label, e.start, e.end) for e in g})
        for s, g in zip(served, gold, strict=True)
    ]
    tp = sum(len(s & g) for s, g in pairs)
    f1 = 2 * tp / (sum(len(s) for s, _ in pairs) + sum(len(g) for _, g in pairs))
    assert (
        round(f1, 6)
        == report["shipped"]["micro"]["f1"]
        == round(options[calibration.method].validation_micro_f1, 6)
    )
    assert "**Shipped:" in (bundle / "calibration_report.md").read_text()
