"""Build the built-in default TF-IDF posture bundle (``postures-tfidf``) if it is not cached yet.

The legal corpus's splits exactly as the Longformer build uses them (``generate_splits`` with the
same seed and ``VALIDATION_DOCS``): a scikit-learn pipeline (word 1-2-grams + char_wb 3-5-grams,
sublinear tf, one-vs-rest logistic regression) is fitted on the train split, exported with
``export_bundle("tfidf", ...)`` (parity gate on the validation documents), then calibrated on the
validation split with ``python -m export calibrate`` like the Longformer bundle (0.5 / global /
per-class / shrunk thresholds cross-validated, the best out-of-fold micro-F1 ships; per-class
automation and review band with the posture build's targets, docs/review.md), then the test
split is scored at the shipped thresholds. Training takes a few seconds.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from default_models.posture_build import VALIDATION_DOCS
from default_models.workdir import fresh_work_dir
from export.progress import Heartbeat

TFIDF_BUNDLE = "postures-tfidf"
EVALUATION_FILE = "evaluation.json"  # beside bundle.json: the build's test figures


def _is_built(bundle: Path) -> bool:
    from service.bundle import BundleError, read_manifest

    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    # built before TF-IDF bundles were calibrated with automation (or with the mirrored review
    # band): rebuilt (seconds)
    automation = manifest.automation
    return (
        manifest.task == "tfidf"
        and (bundle / EVALUATION_FILE).is_file()
        and automation is not None
        and automation.target_miss_rate is not None
    )


def make_pipeline() -> Any:
    """The unfitted pipeline: word and character n-grams, one-vs-rest logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(3, 5),
                    sublinear_tf=True,
                    min_df=3,
                    max_features=50_000,
                ),
            ),
        ]
    )
    classifier = OneVsRestClassifier(
        LogisticRegression(C=10.0, max_iter=1000, class_weight="balanced")
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def _truth(docs: list[Any], labels: list[str]) -> np.ndarray:
    return np.asarray([[label in d.labels for label in labels] for d in docs], dtype=bool)


def served_probabilities(bundle: Path, texts: list[str]) -> np.ndarray:
    """Probabilities [texts, labels] of the bundle as the service loads and computes them."""
    from families.tfidf.runtime import TfidfRuntime
    from service.runtime.loader import load_runtime

    runtime = load_runtime(bundle).runtime
    assert isinstance(runtime, TfidfRuntime)
    return runtime.model.probabilities(texts)


def calibrate(bundle: Path, validation: Path) -> dict[str, Any]:
    """``python -m export calibrate`` on the bundle (thresholds, automation, report), in place."""
    from default_models.posture_build import POSTURE_AUTOMATION_F1, POSTURE_REVIEW_PRECISION
    from export.api import calibrate as calibrate_bundle
    from export.calibration.command import CalibrateOptions
    from families.tfidf.spec import TfidfManifest
    from service.bundle import read_manifest

    report = calibrate_bundle(
        CalibrateOptions(
            bundle=bundle,
            data=validation,
            automation_f1=POSTURE_AUTOMATION_F1,
            review_precision=POSTURE_REVIEW_PRECISION,
        )
    )
    manifest = read_manifest(bundle)
    assert isinstance(manifest, TfidfManifest) and manifest.tfidf.calibration is not None
    summary = manifest.tfidf.calibration
    assert summary.method is not None and summary.options is not None
    shipped = summary.options[summary.method]
    return {
        "chosen": summary.method,
        "reason": report["shipped"]["reason"],  # type: ignore[index]
        "oof_micro_f1": round(shipped.oof_micro_f1, 4),
        "oof_macro_f1": round(shipped.oof_macro_f1, 4),
        "thresholds": dict(zip(manifest.labels, manifest.tfidf.thresholds or [], strict=True)),
    }


def evaluate(
    probs: np.ndarray, truth: np.ndarray, thresholds: list[float], labels: list[str]
) -> dict[str, Any]:
    from export.calibration.cuts import micro_macro

    micro_half, macro_half = micro_macro(probs, truth, np.full(len(labels), 0.5))
    micro, macro = micro_macro(probs, truth, np.asarray(thresholds))
    return {
        "documents": int(truth.shape[0]),
        "micro_f1_at_0.5": round(micro_half, 4),
        "macro_f1_at_0.5": round(macro_half, 4),
        "micro_f1": round(micro, 4),
        "macro_f1": round(macro, 4),
    }


def automation_counts(bundle: Path) -> dict[str, Any]:
    """The shipped per-class automation (validation split): automated classes, review rate."""
    from service.bundle import read_manifest

    summary = read_manifest(bundle).automation
    assert summary is not None
    return {
        "automated": sum(c.automate for c in summary.classes),
        "classes": len(summary.classes),
        "automated_classes": [c.label for c in summary.classes if c.automate],
        "validation_review_rate": round(summary.review_rate, 4),
        "oof_review_rate": round(summary.oof.review_rate, 4) if summary.oof else None,
    }


def build_tfidf_postures(root: Path, force: bool = False) -> Path:
    """Train, export, calibrate, evaluate; the bundle directory."""
    bundle = root / "bundles" / TFIDF_BUNDLE
    if _is_built(bundle) and not force:
        print(f"default TF-IDF posture bundle already built: {bundle}")
        return bundle

    work, _ = fresh_work_dir(root, TFIDF_BUNDLE, None)
    began = time.perf_counter()
    with Heartbeat() as beat:
        import joblib

        from default_models.legal_corpus import POSTURES, generate_splits, write_jsonl
        from export.api import export_bundle
        from export.errors import ExportError
        from families.tfidf.export import TfidfExportOptions

        beat.phase("generating the legal corpus (the Longformer build's splits)")
        splits = generate_splits(n_validation=VALIDATION_DOCS)
        labels = list(POSTURES)
        for name, docs in splits.items():
            write_jsonl(docs, work / "data" / f"{name}.jsonl")
        train = splits["train"]
        beat.phase(f"fitting the TF-IDF pipeline on {len(train)} documents")
        fit_began = time.perf_counter()
        pipeline = make_pipeline()
        pipeline.fit([d.text for d in train], _truth(train, labels).astype(int))
        fit_seconds = time.perf_counter() - fit_began
        joblib.dump(pipeline, work / "pipeline.joblib")
        (work / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        heldout = work / "data" / "heldout.jsonl"
        heldout.write_text(
            "".join(json.dumps({"text": d.text}) + "\n" for d in splits["validation"]),
            encoding="utf-8",
        )
        staged = work / "bundle"
        try:
            beat.phase("python -m export tfidf (parity gate on the validation documents)")
            export_bundle(
                "tfidf",
                TfidfExportOptions(
                    pipeline=work / "pipeline.joblib",
                    heldout=heldout,
                    out=staged,
                    name=TFIDF_BUNDLE,
                    labels=work / "labels.txt",
                    force=True,
                ),
            )
        except ExportError as exc:
            raise SystemExit(f"python -m export tfidf failed: {exc}") from exc
        beat.phase("python -m export calibrate (thresholds and automation, validation split)")
        validation = splits["validation"]
        calibration = calibrate(staged, work / "data" / "validation.jsonl")
        thresholds = list(calibration["thresholds"].values())
        beat.phase("scoring the test split at the shipped thresholds")
        test = splits["test"]
        test_probs = served_probabilities(staged, [d.text for d in test])
        report = {
            "train_documents": len(train),
            "validation_documents": len(validation),
            "fit_seconds": round(fit_seconds, 2),
            "calibration": calibration,
            "test": evaluate(test_probs, _truth(test, labels), thresholds, labels),
            "automation": automation_counts(staged),
        }
        (staged / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
        shutil.rmtree(bundle, ignore_errors=True)
        bundle.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, bundle)
    print(json.dumps(report, indent=2))
    print(f"default TF-IDF posture bundle built in {time.perf_counter() - began:.0f} s: {bundle}")
    return bundle
