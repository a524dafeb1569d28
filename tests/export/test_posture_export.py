"""`python -m export postures` and `python -m export calibrate` on a tiny random Longformer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.calibration.options import OPTIONS, Settings
from export.calibration.selection import select
from export.cli import main
from families.classify.runtime import ClassifierPipeline
from families.postures.spec import PostureManifest
from service.bundle import read_manifest, verify_bundle
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
    argv = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--min-support", "3"]
    assert main([*argv, "--bootstrap", "200"]) == 0
    out = capsys.readouterr()
    assert "never the test split" in out.err and "out-of-fold micro-F1" in out.out
    manifest = verify_bundle(bundle)
    assert isinstance(manifest, PostureManifest)
    calibration = manifest.postures.calibration
    assert calibration is not None and calibration.options is not None
    report = json.loads((bundle / "calibration_report.json").read_text())
    assert report["unknown_labels"] == {"Not A Posture": 6}
    assert [c["support"] for c in report["classes"]] == [
        sum(label in json.loads(line)["labels"] for line in data.read_text().splitlines())
        for label in manifest.labels
    ]
    # Recompute from what the service serves: the same probabilities give the same choice.
    pipeline = ClassifierPipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "logits", 1))
    docs = [json.loads(line) for line in data.read_text().splitlines()]
    probs = pipeline.probabilities([d["text"] for d in docs]).probabilities
    truth = np.asarray([[label in d["labels"] for label in manifest.labels] for d in docs])
    expected = select(probs, truth, Settings(min_support=3, draws=200))
    assert calibration.method == expected.chosen == report["shipped"]["option"]
    assert manifest.postures.thresholds == expected.shipped.thresholds.tolist()
    assert calibration.own_threshold == [d.own for d in expected.decisions]
    for name in OPTIONS:
        assert (
            calibration.options[name].oof_micro_f1 == expected.options[name].oof_micro_f1.estimate
        )
        assert report["summary"][name]["thresholds"] == pytest.approx(
            expected.options[name].thresholds.tolist(), abs=1e-6
        )
    shipped = calibration.options[calibration.method]
    assert shipped.oof_micro_f1 >= calibration.options["at_0.5"].oof_micro_f1
    # The Markdown carries the summary table and links the two pictures, which are PNGs.
    markdown = (bundle / "calibration_report.md").read_text()
    assert "| option | threshold | validation micro-F1 | out-of-fold micro-F1" in markdown
    for name in ("f1_curves", "reliability"):
        png = bundle / f"calibration_report_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in markdown
    # Same data, same seed: identical thresholds; --report puts every file where it says.
    before = (bundle / "bundle.json").read_text()
    elsewhere = bundle.parent / "reports" / "val.json"
    assert main([*argv, "--bootstrap", "200", "--report", str(elsewhere), "--no-plots"]) == 0
    assert (bundle / "bundle.json").read_text() == before
    assert elsewhere.is_file() and elsewhere.with_suffix(".md").is_file()
    assert not (elsewhere.parent / "val_f1_curves.png").exists()  # --no-plots


def test_a_bundle_calibrated_before_cross_validation_still_loads(
    tiny_posture_bundle: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "old"
    shutil.copytree(tiny_posture_bundle, bundle)
    raw = json.loads((bundle / "bundle.json").read_text())
    raw["postures"]["calibration"] = {
        "data": "validation.jsonl",
        "documents": 150,
        "min_support": 5,
        "micro_f1_at_half": 0.61,
        "micro_f1_global": 0.64,
        "micro_f1_per_class": 0.66,
        "macro_f1_at_half": 0.6,
        "macro_f1_per_class": 0.65,
    }
    (bundle / "bundle.json").write_text(json.dumps(raw))
    manifest = verify_bundle(bundle)
    assert isinstance(manifest, PostureManifest)
    assert manifest.postures.calibration is not None
    assert manifest.postures.calibration.method is None


def test_calibration_refuses_bad_data(calibrated, capsys) -> None:
    bundle, data = calibrated
    data.write_text('{"text": "x", "labels": "On Appeal"}\n')
    before = (bundle / "bundle.json").read_text()
    assert main(["calibrate", "--bundle", str(bundle), "--data", str(data)]) == 1
    assert ":1: not a" in capsys.readouterr().err
    data.write_text('{"text": "x", "labels": ["On Appeal"]}\n' * 9)
    assert main(["calibrate", "--bundle", str(bundle), "--data", str(data)]) == 1
    assert "9 documents; 5-fold cross-validation needs at least 10" in capsys.readouterr().err
    assert main(["calibrate", "--bundle", str(bundle), "--data", str(data), "--folds", "1"]) == 1
    assert "folds must be >= 2" in capsys.readouterr().err
    assert (bundle / "bundle.json").read_text() == before
