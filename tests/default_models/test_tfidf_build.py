"""The default TF-IDF posture build's pieces on a small slice of the legal corpus: the pipeline
exports, ``python -m export calibrate`` writes its thresholds and automation into the bundle and the
served decisions and review fields use them."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np

from default_models.legal_corpus import POSTURES, generate_splits, write_jsonl
from default_models.tfidf_build import (
    _truth,
    calibrate,
    evaluate,
    make_pipeline,
    served_probabilities,
)
from export.api import export_bundle
from families.tfidf.export import TfidfExportOptions
from families.tfidf.runtime import TfidfRuntime
from families.tfidf.spec import TfidfManifest
from service.bundle import read_manifest
from service.runtime.loader import load_runtime


def test_the_default_pipeline_exports_calibrates_and_serves_its_thresholds(
    tmp_path: Path,
) -> None:
    splits = generate_splits(n_train=80, n_validation=60, n_test=20)
    labels = list(POSTURES)
    pipeline = make_pipeline().fit(
        [d.text for d in splits["train"]], _truth(splits["train"], labels).astype(int)
    )
    joblib.dump(pipeline, tmp_path / "pipeline.joblib")
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        "".join(json.dumps({"text": d.text}) + "\n" for d in splits["test"]), encoding="utf-8"
    )
    bundle = export_bundle(
        "tfidf",
        TfidfExportOptions(
            pipeline=tmp_path / "pipeline.joblib",
            heldout=heldout,
            out=tmp_path / "bundle",
            name="postures-tfidf",
            labels=tmp_path / "labels.txt",
        ),
    )
    texts = [d.text for d in splits["validation"]]
    probs = served_probabilities(bundle, texts)
    # Served probabilities are the pipeline's own (the parity gate's promise, re-checked here).
    assert np.abs(probs - pipeline.predict_proba(texts)).max() < 1e-5

    write_jsonl(splits["validation"], tmp_path / "validation.jsonl")
    calibration = calibrate(bundle, tmp_path / "validation.jsonl")
    manifest = read_manifest(bundle)
    assert isinstance(manifest, TfidfManifest) and manifest.schema_version == 5
    assert manifest.tfidf.thresholds == list(calibration["thresholds"].values())
    automation = manifest.automation
    assert automation is not None and [c.label for c in automation.classes] == labels
    assert (bundle / "calibration_report.json").is_file()
    runtime = load_runtime(bundle).runtime
    assert isinstance(runtime, TfidfRuntime)
    thresholds = np.asarray(manifest.tfidf.thresholds)
    for text, p in zip(texts[:10], probs[:10], strict=True):
        answer = runtime.predict([text])
        served = answer.labels[0]
        assert {s.label for s in served} == {labels[c] for c in np.flatnonzero(p >= thresholds)}
        assert answer.reviews is not None
        for c in np.flatnonzero(p >= thresholds):  # a non-automated class's label: reviewed
            if not automation.classes[c].automate:
                assert answer.reviews[0].review

    figures = evaluate(probs, _truth(splits["validation"], labels), list(thresholds), labels)
    assert 0.0 <= figures["macro_f1"] <= 1.0 and figures["documents"] == len(texts)
