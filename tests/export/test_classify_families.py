"""Sequence classifiers on six encoders (both checkpoint forms, multi-label and single-label heads):
export with parity, and ``/v1/classify`` serves probabilities within 1e-3 of PyTorch (HF tokenizer,
eager model, the same windows and aggregation), on texts of one and of several windows."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from export.calibration.abstain import estimate_abstain
from export.calibration.options import Settings
from export.cli import main
from families.classify.runtime import ClassifierPipeline
from families.classify.spec import AbstainSummary, ClassifyManifest
from service.bundle import BundleError, read_manifest, verify_bundle
from service.runtime.session import OnnxSession
from tests.classify_families import (
    CASES,
    LABELS,
    MAX_LENGTH,
    TEXTS,
    Case,
    reference_probabilities,
    served_probabilities,
    source_args,
)
from tests.helpers import running_server


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_export_records_the_head_and_passes_parity(
    case: Case, classifier_bundles: Callable[[str], Path]
) -> None:
    manifest = verify_bundle(classifier_bundles(case.id))
    assert isinstance(manifest, ClassifyManifest) and manifest.schema_version == 4
    spec = manifest.classify
    assert spec.head == f"{case.head}-label"
    assert spec.problem_type == f"{case.head}_label_classification"
    assert spec.architecture.lower().startswith(case.model_type.replace("-", ""))
    assert spec.global_attention is (case.model_type == "longformer")
    assert spec.aggregation == ("max" if case.head == "multi" else "mean")
    assert (spec.thresholds == [0.5] * len(LABELS)) is (case.head == "multi")
    assert manifest.parity.max_abs_diff <= 1e-4 < manifest.parity.atol == 1e-3
    cases = {(d["length"], d["batch"]) for d in manifest.parity.details}
    assert {(1, 1), (1, 3), (MAX_LENGTH, 1), (MAX_LENGTH, 3)} <= cases
    with_types = case.model_type in ("bert", "roberta", "xlm-roberta")
    assert ("token_type_ids" in manifest.onnx.inputs) is with_types


def test_served_probabilities_equal_pytorch(classifier_bundles: Callable[[str], Path]) -> None:
    bundles = {case.id: classifier_bundles(case.id) for case in CASES}
    root = next(iter(bundles.values())).parent
    with running_server(root) as base:
        for case in CASES:
            served, results = served_probabilities(base, case.id, TEXTS)
            expected = reference_probabilities(bundles[case.id].parents[1] / case.id, TEXTS)
            np.testing.assert_allclose(served, expected, rtol=0, atol=1e-3, err_msg=case.id)
            assert results[-1]["windows"] > 2 and results[0]["windows"] == 1
            for probs, result in zip(served, results, strict=True):
                got = [(p["label"], p["probability"]) for p in result["labels"]]
                if case.head == "single":  # the argmax; no abstain threshold was set
                    assert got == [(LABELS[int(probs.argmax())], probs.max())]
                    assert probs.sum() == pytest.approx(1.0)
                else:  # every class at or above 0.5, most probable first
                    order = np.argsort(-probs, kind="stable")
                    assert got == [(LABELS[c], probs[c]) for c in order if probs[c] >= 0.5]


def test_a_classify_bundle_below_schema_4_is_refused(
    classifier_bundles: Callable[[str], Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "old"
    shutil.copytree(classifier_bundles("bert-single-pt"), bundle)
    raw = json.loads((bundle / "bundle.json").read_text())
    raw["schema_version"] = 3
    (bundle / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="needs schema_version 4"):
        verify_bundle(bundle)
    raw.update(schema_version=4, classify={**raw["classify"], "aggregation": "max"})
    (bundle / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="aggregates windows by their mean"):
        verify_bundle(bundle)


def test_problem_type_flag_overrides_the_config(
    classifier_bundles: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = classifier_bundles("bert-single-pt").parents[1] / "bert-single-pt"
    args = [*source_args(root, "dir"), "--max-length", "32", "--parity-lengths", "1,32"]
    assert main(["classify", *args, "--out", str(tmp_path / "m"), "--problem-type", "multi"]) == 0
    manifest = read_manifest(tmp_path / "m")
    assert isinstance(manifest, ClassifyManifest) and manifest.classify.head == "multi-label"
    assert main(["classify", *args, "--out", str(tmp_path / "x"), "--aggregation", "max"]) == 1
    assert "mean of their probabilities" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_single_label_calibration_sets_an_abstain_threshold_the_service_applies(
    classifier_bundles: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "intents"
    shutil.copytree(classifier_bundles("roberta-single-dir"), bundle)
    manifest = read_manifest(bundle)
    assert isinstance(manifest, ClassifyManifest)
    pipeline = ClassifierPipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "logits", 1))
    rng = np.random.default_rng(0)
    words = " ".join(TEXTS).split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 30)))) for _ in range(80)]
    probs = pipeline.probabilities(texts).probabilities
    top = probs.argmax(axis=1)
    # Right when confident (mostly), wrong or "no intent" otherwise: a threshold exists.
    confident = probs.max(axis=1) >= np.median(probs.max(axis=1))
    gold = [
        [LABELS[t]] if ok or i % 5 == 0 else ([] if i % 2 else [LABELS[(t + 1) % len(LABELS)]])
        for i, (t, ok) in enumerate(zip(top, confident, strict=True))
    ]
    data = tmp_path / "val.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "labels": g}) + "\n" for t, g in zip(texts, gold, strict=True)
        )
    )
    argv = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--bootstrap", "200"]
    assert main([*argv, "--target-precision", "0.85"]) == 0
    assert "abstain threshold" in capsys.readouterr().out
    calibrated = verify_bundle(bundle)
    assert isinstance(calibrated, ClassifyManifest)
    correct = top == np.asarray([LABELS.index(g[0]) if g else -1 for g in gold])
    expected = estimate_abstain(probs.max(axis=1), correct, 0.85, Settings(draws=200))
    assert calibrated.classify.abstain_threshold == pytest.approx(expected.threshold)
    summary = calibrated.classify.calibration
    assert isinstance(summary, AbstainSummary) and summary.coverage == expected.coverage
    assert 0 < summary.coverage < 1 and summary.precision >= 0.85
    served = ClassifierPipeline(
        calibrated, bundle, OnnxSession(bundle / "model.onnx", "logits", 1)
    ).predict(texts)
    threshold = calibrated.classify.abstain_threshold
    for probs_i, labels in zip(served.probabilities, served.labels, strict=True):
        if probs_i.max() < threshold:
            assert labels == []
        else:
            assert [c.label for c in labels] == [LABELS[int(probs_i.argmax())]]
            assert labels[0].threshold == threshold
    # Several labels on a line of a single-label split: refused, the bundle unchanged.
    data.write_text((json.dumps({"text": "x", "labels": LABELS[:2]}) + "\n") * 12)
    before = (bundle / "bundle.json").read_text()
    assert main(argv) == 1
    assert "one label per text" in capsys.readouterr().err
    assert (bundle / "bundle.json").read_text() == before
