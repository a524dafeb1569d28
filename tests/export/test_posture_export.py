"""`python -m export postures` and `python -m export calibrate` on a tiny random Longformer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.cli import main
from export.postures.thresholds import calibrate
from service.bundle import PostureManifest, read_manifest, verify_bundle
from service.postures.pipeline import PosturePipeline
from service.runtime.session import OnnxSession


def test_bundle_passes_parity_at_window_edges_batch_1_and_3(tiny_posture_bundle: Path) -> None:
    manifest = verify_bundle(tiny_posture_bundle)
    assert isinstance(manifest, PostureManifest)
    assert manifest.parity.max_abs_diff <= 1e-4 < manifest.parity.atol == 1e-3
    cases = {(d["length"], d["batch"]) for d in manifest.parity.details}
    assert cases == {(n, b) for n in (1, 100, 511, 512, 513, 600) for b in (1, 3)}
    assert manifest.postures.thresholds == [0.5] * 5 and manifest.postures.aggregation == "max"
    assert manifest.onnx.inputs == ["input_ids", "attention_mask"]


def test_training_checkpoint_form_exports(tiny_longformer: Path, tmp_path: Path) -> None:
    code = main(
        [
            "postures",
            "--checkpoint",
            str(tiny_longformer / "model.pt"),
            "--base",
            str(tiny_longformer / "base"),
            "--labels",
            str(tiny_longformer / "labels.txt"),
            "--out",
            str(tmp_path / "pt"),
            "--max-length",
            "200",
            "--parity-lengths",
            "1,33,200",
        ]
    )
    assert code == 0
    assert read_manifest(tmp_path / "pt").parity.max_abs_diff <= 1e-4


def test_a_bert_checkpoint_is_refused_clearly(
    tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    assert (
        main(
            ["postures", "--checkpoint", str(tiny_checkpoint / "dir"), "--out", str(tmp_path / "x")]
        )
        == 1
    )
    assert "not longformer" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture()
def calibrated(tiny_posture_bundle: Path, tmp_path: Path) -> tuple[Path, Path]:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_posture_bundle, bundle)
    rng = np.random.default_rng(0)
    labels = read_manifest(bundle).labels
    words = ["court", "appeal", "motion", "dismiss", "judgment", "the", "plaintiff", "held"]
    lines = []
    for i in range(60):
        text = " ".join(rng.choice(words, size=int(rng.integers(5, 900))))
        chosen = [labels[c] for c in range(len(labels)) if rng.random() < 0.4]
        lines.append(
            {"text": text, "labels": [*chosen, "Not A Posture"] if i % 10 == 0 else chosen}
        )
    data = tmp_path / "validation.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return bundle, data


def test_calibration_writes_thresholds_that_match_served_probabilities(calibrated, capsys) -> None:
    bundle, data = calibrated
    assert (
        main(["calibrate", "--bundle", str(bundle), "--data", str(data), "--min-support", "3"]) == 0
    )
    out = capsys.readouterr()
    assert "never the test split" in out.err and "micro-F1" in out.out
    manifest = verify_bundle(bundle)
    assert isinstance(manifest, PostureManifest) and manifest.postures.calibration is not None
    report = json.loads((bundle / "calibration_report.json").read_text())
    assert report["unknown_labels"] == {"Not A Posture": 6}
    assert [c["support"] for c in report["classes"]] == [
        sum(label in json.loads(line)["labels"] for line in data.read_text().splitlines())
        for label in manifest.labels
    ]
    # Recompute from what the service serves: the same probabilities give the same thresholds.
    pipeline = PosturePipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "logits", 1))
    docs = [json.loads(line) for line in data.read_text().splitlines()]
    probs = pipeline.probabilities([d["text"] for d in docs]).probabilities
    truth = np.asarray([[label in d["labels"] for label in manifest.labels] for d in docs])
    expected = calibrate(probs, truth, min_support=3)
    assert manifest.postures.thresholds == pytest.approx(expected.thresholds.tolist())
    assert report["summary"]["per_class"]["micro_f1"] >= report["summary"]["at_0.5"]["micro_f1"]


def test_calibration_refuses_bad_data(calibrated, capsys) -> None:
    bundle, data = calibrated
    data.write_text('{"text": "x", "labels": "On Appeal"}\n')
    before = (bundle / "bundle.json").read_text()
    assert main(["calibrate", "--bundle", str(bundle), "--data", str(data)]) == 1
    assert ":1: not a" in capsys.readouterr().err
    assert (bundle / "bundle.json").read_text() == before
