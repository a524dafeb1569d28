"""The ensemble family end to end with two tiny multi-label classifiers over the same labels:
export (selection + report), serving (the decision is the documented combination of the
members' served probabilities, on /v1/classify and /v1/postures), the batch scorer, and the
refusals (a changed or missing member, members with different labels)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from export.cli import main as export_main
from service.app import create_app
from service.bundle import BundleError
from service.ensemble import combine
from service.runtime.loader import load_runtime
from service.settings import Settings
from tests.classify_families import LABELS, MULTILINGUAL

WORDS = " ".join(MULTILINGUAL).split()


def _text(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(5, 60))))


def _member(source: Path, root: Path, name: str, labels: list[str] | None = None) -> None:
    shutil.copytree(source, root / name)
    manifest = json.loads((root / name / "bundle.json").read_text())
    manifest["name"] = name
    if labels is not None:
        manifest["labels"] = labels
    (root / name / "bundle.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def built(
    classifier_bundles: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Members ``tiny-a`` and ``tiny-b`` in a bundles dir, a validation file, the ensemble."""
    root = tmp_path_factory.mktemp("ensemble")
    bundles = root / "bundles"
    _member(classifier_bundles("bert-multi-dir"), bundles, "tiny-a")
    _member(classifier_bundles("distilbert-multi-pt"), bundles, "tiny-b")
    rng = np.random.default_rng(7)
    validation = root / "val.jsonl"
    lines = []
    for i in range(36):
        labels = [LABELS[i % len(LABELS)]] + [x for x in LABELS if rng.random() < 0.25]
        lines.append(json.dumps({"text": _text(rng), "labels": sorted(set(labels))}))
    validation.write_text("\n".join(lines) + "\n")
    out = bundles / "tiny-ensemble"
    argv = ["ensemble", "--members", "tiny-a", "tiny-b", "--bundles-dir", str(bundles),
            "--validation", str(validation), "--out", str(out), "--folds", "3", "--draws", "200",
            "--grid", "4"]  # fmt: skip
    assert export_main(argv) == 0
    return {"bundles": bundles, "ensemble": out, "validation": validation}


def test_export_writes_a_graphless_bundle_and_the_report(built: dict[str, Path]) -> None:
    manifest = json.loads((built["ensemble"] / "bundle.json").read_text())
    assert manifest["task"] == "ensemble" and manifest["onnx"] is None
    assert sorted(p.name for p in built["ensemble"].iterdir()) == [
        "bundle.json", "ensemble-report.json", "ensemble-report.md", "ensemble-report.png"
    ]  # fmt: skip
    members = manifest["ensemble"]["members"]
    assert [m["name"] for m in members] == ["tiny-a", "tiny-b"]
    assert [c["label"] for c in manifest["ensemble"]["classes"]] == LABELS
    report = json.loads((built["ensemble"] / "ensemble-report.json").read_text())
    for row, combo in zip(report["classes"], manifest["ensemble"]["classes"], strict=True):
        assert set(row["oof_f1_members"]) == {"tiny-a", "tiny-b"}
        assert list(row["weights"].values()) == combo["weights"]
        low, high = row["oof_gain_95"]
        assert low <= high
        # the rule: a mixture only where the paired interval is above 0
        assert (combo["source"] == "ensemble") == (combo["oof_gain_low"] > 0)
        if combo["source"] == "member":
            assert sorted(combo["weights"]) == [0.0, 1.0]
    markdown = (built["ensemble"] / "ensemble-report.md").read_text()
    assert "OOF F1 tiny-a" in markdown and "ensemble-report.png" in markdown
    assert manifest["parity"]["cases"] > 0 and manifest["parity"]["max_abs_diff"] <= 1e-9


def _served_combination(
    built: dict[str, Path], texts: list[str]
) -> tuple[np.ndarray, list[set[str]]]:
    """The documented combination, computed here from the members' served probabilities."""
    manifest = json.loads((built["ensemble"] / "bundle.json").read_text())
    classes = manifest["ensemble"]["classes"]
    probs = np.stack(
        [
            load_runtime(built["bundles"] / name).runtime.predict(texts).probabilities
            for name in ("tiny-a", "tiny-b")
        ]
    )
    combined = combine(probs, [c["weights"] for c in classes])
    thresholds = np.asarray([c["threshold"] for c in classes])
    decided = [{LABELS[c] for c in np.flatnonzero(row >= thresholds)} for row in combined]
    return combined, decided


@pytest.fixture(scope="module")
def client(built: dict[str, Path]) -> Iterator[TestClient]:
    settings = Settings(bundles_dir=built["bundles"], models=["tiny-ensemble"])
    with TestClient(create_app(settings)) as test_client:
        deadline = time.monotonic() + 120
        while test_client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield test_client


def test_served_decision_is_the_documented_combination(
    built: dict[str, Path], client: TestClient
) -> None:
    rng = np.random.default_rng(11)
    texts = [_text(rng) for _ in range(6)] + [" ".join(MULTILINGUAL) * 3]  # one of several windows
    combined, decided = _served_combination(built, texts)
    for route in ("classify", "postures"):
        response = client.post(
            f"/v1/{route}", json={"texts": texts, "model": "tiny-ensemble", "return_scores": True}
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        key = "labels" if route == "classify" else "postures"
        for row, want, result in zip(combined, decided, results, strict=True):
            assert np.allclose([result["scores"][x] for x in LABELS], row, atol=1e-12, rtol=0)
            assert {p["label"] for p in result[key]} == want
    # the members were loaded too (INFER_MODELS named only the ensemble) and serve their own routes
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"tiny-a", "tiny-b", "tiny-ensemble"}
    assert models["tiny-ensemble"]["onnx_sha256"] is None
    own = client.post("/v1/classify", json={"text": texts[0], "model": "tiny-a"})
    assert own.status_code == 200


def test_batch_scorer_scores_the_ensemble(built: dict[str, Path]) -> None:
    from service.batch.models import load_model

    settings = Settings(bundles_dir=built["bundles"], models=["tiny-ensemble"])
    model = load_model(settings, "tiny-ensemble", return_scores=True)
    texts = ["order a pizza please", "where is my parcel"]
    rows = model.run([model.prepare(t) for t in texts])
    combined, decided = _served_combination(built, texts)
    for row, want, result in zip(combined, decided, rows, strict=True):
        assert np.allclose([result["scores"][x] for x in LABELS], row, atol=1e-12, rtol=0)
        assert {p["label"] for p in result["labels"]} == want


def test_a_changed_member_is_refused_with_the_reason(
    built: dict[str, Path], tmp_path: Path
) -> None:
    bundles = tmp_path / "bundles"
    shutil.copytree(built["bundles"], bundles)
    assert load_runtime(bundles / "tiny-ensemble").runtime is not None
    manifest = json.loads((bundles / "tiny-b" / "bundle.json").read_text())
    manifest["version"] = "2"
    (bundles / "tiny-b" / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"member tiny-b .* changed: .*rebuild the ensemble"):
        load_runtime(bundles / "tiny-ensemble")
    shutil.rmtree(bundles / "tiny-b")
    with pytest.raises(BundleError, match="member tiny-b is missing"):
        load_runtime(bundles / "tiny-ensemble")
    with pytest.raises(BundleError, match="tiny-b"):  # the service refuses to start, naming it
        from service.registry import ModelRegistry

        ModelRegistry(Settings(bundles_dir=bundles, models=["tiny-ensemble"])).discover()


def test_a_member_version_an_ensemble_runs_cannot_be_unloaded(built: dict[str, Path]) -> None:
    settings = Settings(bundles_dir=built["bundles"], admin_keys=["admin-key"])
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        version = json.loads((built["bundles"] / "tiny-a" / "bundle.json").read_text())["version"]
        url = f"/v1/admin/models/tiny-a/versions/{version}:unload?force=true"
        refused = client.post(url, headers={"Authorization": "Bearer admin-key"})
        assert refused.status_code == 409
        assert "is run by ['tiny-ensemble@" in refused.json()["error"]["message"]


def test_members_with_other_labels_are_refused(built: dict[str, Path], tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    shutil.copytree(built["bundles"] / "tiny-a", bundles / "tiny-a")
    _member(built["bundles"] / "tiny-b", bundles, "tiny-c", labels=[*LABELS[1:], LABELS[0]])
    argv = ["ensemble", "--members", "tiny-a", "tiny-c", "--bundles-dir", str(bundles),
            "--validation", str(built["validation"]), "--out", str(tmp_path / "e")]  # fmt: skip
    assert export_main(argv) == 1
    assert not (tmp_path / "e").exists()
