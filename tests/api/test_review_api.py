"""Per-class automation end to end on the tiny posture bundle: ``python -m export calibrate``
stores it, ``/v1/models`` shows it, ``/v1/classify`` and ``/v1/postures`` answer ``review`` with
reasons (docs/review.md), the metrics count them; bundles without it answer as before."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from export.cli import main
from families.classify.runtime import ClassifierPipeline
from families.postures.serving import FAMILY as POSTURES
from families.postures.spec import PostureManifest
from service.app import create_app
from service.bundle import BundleError, read_manifest, verify_bundle
from service.manifest import VariantInfo, schema_version_for
from service.review import AutomationSummary
from service.runtime.session import OnnxSession
from service.settings import Settings

WORDS = ["court", "appeal", "motion", "dismiss", "judgment", "the", "plaintiff", "held", "trial"]


@dataclass(frozen=True)
class Served:
    client: TestClient
    texts: list[str]
    reviewed: Path
    plain: Path


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 40)))) for _ in range(n)]


def _validation(bundle: Path, texts: list[str], path: Path) -> None:
    """Class 0's truth follows the model's own probability (a few near the cut flipped): it can be
    automated, with a review band; the other classes' truths are coin flips: never automated."""
    manifest = read_manifest(bundle)
    assert isinstance(manifest, PostureManifest)
    pipeline = ClassifierPipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "logits", 1))
    probs = pipeline.probabilities(texts).probabilities
    rng = np.random.default_rng(2)
    order = np.argsort(-probs[:, 0])
    truth0 = np.zeros(len(texts), dtype=bool)
    truth0[order[: len(texts) // 2]] = True
    truth0[order[len(texts) // 2 - 10 : len(texts) // 2 : 3]] = False  # just above the cut
    lines = []
    for d, text in enumerate(texts):
        labels = [manifest.labels[0]] if truth0[d] else []
        labels += [label for label in manifest.labels[1:] if rng.random() < 0.4]
        lines.append(json.dumps({"text": text, "labels": labels}))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def served(tiny_posture_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("review-api")
    texts = _texts(80)
    data = root.parent / "validation.jsonl"
    _validation(tiny_posture_bundle, texts, data)
    bundles = root / "bundles"
    for name, extra in (("reviewed", []), ("plain", ["--no-automation"])):
        bundle = bundles / name
        shutil.copytree(tiny_posture_bundle, bundle)
        argv = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--no-plots"]
        assert main([*argv, "--bootstrap", "200", "--min-support", "3", *extra]) == 0
        manifest = json.loads((bundle / "bundle.json").read_text())
        manifest["name"] = name
        (bundle / "bundle.json").write_text(json.dumps(manifest))
    with TestClient(create_app(Settings(bundles_dir=bundles, max_texts=128))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield Served(client, texts, bundles / "reviewed", bundles / "plain")


def _automation(bundle: Path) -> AutomationSummary:
    automation = verify_bundle(bundle).automation
    assert automation is not None
    return automation


def _post(client: TestClient, route: str, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post(route, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_calibrate_stores_per_class_automation_under_schema_5(served: Served) -> None:
    manifest = verify_bundle(served.reviewed)
    assert manifest.schema_version == 5
    automation = _automation(served.reviewed)
    assert [c.label for c in automation.classes] == manifest.labels
    assert automation.target_f1 == 0.63 and automation.target_precision == 0.95
    first, *rest = automation.classes
    assert first.automate and first.f1.low >= 0.63
    assert first.band_low < first.band_high  # the flipped labels above the cut need a band
    assert not any(c.automate for c in rest)  # coin-flip classes stay with people
    for c in automation.classes:
        assert c.f1.low <= c.f1.value <= c.f1.high
    report = json.loads((served.reviewed / "calibration_report.json").read_text())
    assert report["automation"] == automation.model_dump()
    # Without automation the bundle keeps the version older services read.
    plain = verify_bundle(served.plain)
    assert plain.automation is None and plain.schema_version < 5


def test_a_bundle_with_automation_is_refused_under_an_older_schema_version(
    served: Served, tmp_path: Path
) -> None:
    bundle = tmp_path / "old"
    shutil.copytree(served.reviewed, bundle)
    raw = json.loads((bundle / "bundle.json").read_text())
    raw["schema_version"] = 4
    (bundle / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="needs schema_version 5"):
        verify_bundle(bundle)


def test_models_shows_per_class_quality_and_automate(served: Served) -> None:
    cards = {c["name"]: c for c in served.client.get("/v1/models").json()["models"]}
    section = cards["reviewed"]["automation"]
    assert section == json.loads(_automation(served.reviewed).model_dump_json())
    assert section["classes"][0]["automate"] is True
    assert {"precision", "recall", "f1", "band_low", "band_high"} <= set(section["classes"][0])
    assert cards["plain"]["automation"] is None
    assert "automation" not in json.dumps(cards["plain"]["details"])


def _expected_reasons(
    scores: dict[str, float], automation: AutomationSummary, thresholds: list[float]
) -> list[dict[str, object]]:
    """docs/review.md's rule, written out independently of service/review.py."""
    out: list[dict[str, object]] = []
    for c, t in zip(automation.classes, thresholds, strict=True):
        p = scores[c.label]
        if p >= t and not c.automate:
            out.append({"label": c.label, "reason": "class_not_automated"})
        if c.automate and c.band_low <= p < c.band_high:
            out.append({"label": c.label, "reason": "near_threshold"})
    return out


@pytest.mark.parametrize("route", ["/v1/classify", "/v1/postures"])
def test_review_reasons_follow_the_documented_rule(served: Served, route: str) -> None:
    automation = _automation(served.reviewed)
    manifest = verify_bundle(served.reviewed)
    assert isinstance(manifest, PostureManifest)
    thresholds = manifest.postures.thresholds
    answer = _post(served.client, route, texts=served.texts, model="reviewed", return_scores=True)
    kinds = set()
    for result in answer["results"]:
        expected = _expected_reasons(result["scores"], automation, thresholds)
        got = [{"label": r["label"], "reason": r["reason"]} for r in result["reasons"]]
        assert got == expected
        assert result["review"] is bool(expected)
        for r in result["reasons"]:
            assert r["probability"] == result["scores"][r["label"]]
            assert r["threshold"] == thresholds[manifest.labels.index(r["label"])]
        kinds |= {r["reason"] for r in got}
    assert kinds == {"class_not_automated", "near_threshold"}  # both rules were exercised
    reviewed = sum(r["review"] for r in answer["results"]) / len(answer["results"])
    assert reviewed == pytest.approx(automation.review_rate)  # the validation texts themselves


def test_a_class_below_the_target_is_never_auto_decided(served: Served) -> None:
    automation = _automation(served.reviewed)
    weak = {c.label for c in automation.classes if not c.automate}
    answer = _post(served.client, "/v1/classify", texts=served.texts, model="reviewed")
    issued = 0
    for result in answer["results"]:
        flagged = {r["label"] for r in result["reasons"] if r["reason"] == "class_not_automated"}
        for label in (p["label"] for p in result["labels"]):
            if label in weak:
                issued += 1
                assert label in flagged and result["review"] is True
    assert issued > 0  # weak classes were predicted, and every one went to a person


def test_without_automation_answers_are_byte_identical(served: Served) -> None:
    for route in ("/v1/classify", "/v1/postures"):
        body = {"texts": served.texts[:10], "return_scores": True}
        plain = served.client.post(route, json={**body, "model": "plain"})
        reviewed = _post(served.client, route, **body, model="reviewed")
        assert b'"review"' not in plain.content and b'"reasons"' not in plain.content
        # The same thresholds (same data, same seed): removing the review fields gives the plain
        # bundle's answer, byte for byte (the model name aside).
        for result in reviewed["results"]:
            del result["review"], result["reasons"]
        reviewed["model"]["name"] = "plain"
        assert json.dumps(reviewed, separators=(",", ":")).encode() == plain.content


def test_the_batch_scorer_writes_review_fields(served: Served) -> None:
    manifest = verify_bundle(served.reviewed)
    assert isinstance(manifest, PostureManifest)
    bundle = served.reviewed
    pipeline = ClassifierPipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "logits", 1))
    record = POSTURES.batch.result(pipeline.predict(served.texts[:1]), manifest.labels, False)
    assert isinstance(record["review"], bool) and isinstance(record["reasons"], list)
    plain_manifest = verify_bundle(served.plain)
    assert isinstance(plain_manifest, PostureManifest)
    plain = ClassifierPipeline(
        plain_manifest, served.plain, OnnxSession(served.plain / "model.onnx", "logits", 1)
    )
    assert "review" not in POSTURES.batch.result(plain.predict(served.texts[:1]), [], False)


def test_metrics_count_review_decisions_and_show_the_validation_rate(served: Served) -> None:
    answer = _post(served.client, "/v1/postures", texts=served.texts[:20], model="reviewed")
    flagged = sum(r["review"] for r in answer["results"])
    before = served.client.get("/metrics").text

    def value(text: str, series: str) -> float:
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    review = 'infer_review_documents_total{decision="review",model="reviewed",version="1"}'
    auto = 'infer_review_documents_total{decision="automatic",model="reviewed",version="1"}'
    _post(served.client, "/v1/postures", texts=served.texts[:20], model="reviewed")
    after = served.client.get("/metrics").text
    assert value(after, review) - value(before, review) == flagged
    assert value(after, auto) - value(before, auto) == 20 - flagged
    rate = _automation(served.reviewed).review_rate
    assert value(after, 'infer_review_validation_rate{model="reviewed"}') == pytest.approx(rate)
    assert 'infer_review_reasons_total{label="Posture 1"' in after
    assert 'model="plain"' not in "\n".join(
        line for line in after.splitlines() if line.startswith("infer_review")
    )


def test_an_int8_bundle_with_automation_needs_schema_5(served: Served) -> None:
    """A static-INT8 variant alone needs 4; automation on top of it needs 5 (the real default
    posture bundle is INT8: calibrating it must not stop at 4)."""
    manifest = verify_bundle(served.reviewed)
    int8 = manifest.model_copy(update={"variant": VariantInfo(quantization="int8-static")})
    assert schema_version_for(int8) == 5
    plain = verify_bundle(served.plain).model_copy(update={"variant": int8.variant})
    assert schema_version_for(plain) == 4
