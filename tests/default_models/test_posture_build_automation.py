"""The default posture build calibrates with per-class automation (docs/review.md): its calibrate
options, run for real on the tiny posture bundle, ship the automation section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import export.api
from default_models import posture_build
from export.api import calibrate as run_calibrate
from export.calibration.command import CalibrateOptions
from export.progress import Heartbeat
from service.bundle import read_manifest, verify_bundle


def test_the_default_posture_build_ships_automation(
    tiny_posture_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[CalibrateOptions] = []
    monkeypatch.setattr(export.api, "export_bundle", lambda command, options: None)
    monkeypatch.setattr(export.api, "calibrate", lambda options: asked.append(options))
    with Heartbeat() as beat:
        posture_build._export_and_calibrate(
            beat, tmp_path / "ckpt", tmp_path / "out", tmp_path / "validation.jsonl"
        )
    (options,) = asked
    assert options.automation_f1 == posture_build.POSTURE_AUTOMATION_F1 == 0.63
    assert options.review_precision == posture_build.POSTURE_REVIEW_PRECISION
    assert not options.no_automation

    # The same options on the tiny bundle and a small validation file: the bundle ships it.
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_posture_bundle, bundle)
    labels = read_manifest(bundle).labels
    rng = np.random.default_rng(3)
    words = ["court", "appeal", "motion", "dismiss", "judgment", "plaintiff"]
    lines = [
        {
            "text": " ".join(rng.choice(words, size=int(rng.integers(3, 30)))),
            "labels": [label for label in labels if rng.random() < 0.4],
        }
        for _ in range(40)
    ]
    data = tmp_path / "validation.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fields: dict[str, Any] = options.model_dump()
    fields.update(bundle=bundle, data=data, bootstrap=100, min_support=3, no_plots=True)
    run_calibrate(CalibrateOptions(**fields))
    automation = verify_bundle(bundle).automation
    assert automation is not None and automation.target_f1 == 0.63
    assert [c.label for c in automation.classes] == labels
    assert posture_build._automated_classes(bundle) == [
        c.label for c in automation.classes if c.automate
    ]


def test_a_cached_posture_bundle_without_the_miss_rate_band_is_recalibrated_not_retrained(
    tiny_posture_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run`` over a cache built before the band's own lower edge: the posture build
    recalibrates the shipped bundle in place (same thresholds, new automation) and trains
    nothing; a second run leaves it alone."""
    root = tmp_path / "root"
    bundle = root / "bundles" / posture_build.POSTURE_BUNDLE
    shutil.copytree(tiny_posture_bundle, bundle)
    labels = read_manifest(bundle).labels
    rng = np.random.default_rng(5)
    words = ["court", "appeal", "motion", "dismiss", "judgment", "plaintiff"]
    validation = root / "work" / posture_build.POSTURE_BUNDLE / "data" / "validation.jsonl"
    validation.parent.mkdir(parents=True)
    validation.write_text(
        "".join(
            json.dumps(
                {
                    "text": " ".join(rng.choice(words, size=int(rng.integers(3, 30)))),
                    "labels": [label for label in labels if rng.random() < 0.4],
                }
            )
            + "\n"
            for _ in range(40)
        )
    )
    # calibrated without automation: what the cache held before
    run_calibrate(
        CalibrateOptions(bundle=bundle, data=validation, no_automation=True, no_plots=True)
    )
    assert read_manifest(bundle).automation is None
    thresholds = json.loads((bundle / "bundle.json").read_text())["postures"]["thresholds"]

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the build must not retrain or re-export a built bundle")

    monkeypatch.setattr(posture_build, "fresh_work_dir", no_training)
    assert posture_build.build_postures(root) == bundle
    manifest = verify_bundle(bundle)
    automation = manifest.automation
    assert automation is not None and automation.target_miss_rate == pytest.approx(0.05)
    assert json.loads((bundle / "bundle.json").read_text())["postures"]["thresholds"] == thresholds
    before = (bundle / "bundle.json").read_bytes()
    posture_build.build_postures(root)
    assert (bundle / "bundle.json").read_bytes() == before
