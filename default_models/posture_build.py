"""Build the built-in default posture bundle if it is not cached yet.

Generate the legal corpus, train a small Longformer on its train split, export it with
``python -m export postures``, calibrate thresholds on the validation split with
``python -m export calibrate`` (the commands a user runs), then score the test split with every
calibration option's thresholds beside their validation and out-of-fold figures.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from default_models.int8_gate import ALSO_INT8_FORMATS, ship_int8_if_gated
from default_models.workdir import fresh_work_dir
from export.progress import Heartbeat
from export.variants.request import Quantization, VariantRequest

POSTURE_BUNDLE = "postures-legal"
# Validation documents the thresholds are cross-validated and tuned on. 150 was too few for
# per-class cuts to generalise (they made test micro-F1 worse); scoring this many costs ~1 min.
VALIDATION_DOCS = 600
# Static INT8 when it passes both gates (default_models.int8_gate), else fp32 with the reason in
# bundle.json; None: fp32 without trying. Its activation ranges come from the first
# INT8_VALIDATION_DOCS validation documents, each run alone (README, "Static INT8").
POSTURE_QUANTIZE: Quantization | None = "int8-static"
INT8_VALIDATION_DOCS = 150
# Per-class automation (docs/review.md): a posture is issued without a person only when its
# out-of-fold F1's 95% low end reaches the human agreement level, and outside a review band whose
# labels reach this precision on validation.
POSTURE_AUTOMATION_F1 = 0.63
POSTURE_REVIEW_PRECISION = 0.95


def _is_built(bundle: Path) -> bool:
    from families.postures.spec import PostureManifest
    from service.bundle import BundleError, read_manifest

    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    return isinstance(manifest, PostureManifest) and manifest.postures.calibration is not None


def _automation_is_stale(bundle: Path) -> bool:
    """Built before per-class automation, or with the mirrored review band (no miss-rate
    target): ``python -m export calibrate`` again brings it up to date without retraining."""
    from service.bundle import read_manifest

    automation = read_manifest(bundle).automation
    return automation is None or automation.target_miss_rate is None


def recalibrate(bundle: Path, validation: Path) -> None:
    """``python -m export calibrate`` on the shipped bundle in place (its validation split): the
    same probabilities give the same thresholds; the automation and review band are renewed."""
    from export.api import calibrate
    from export.calibration.command import CalibrateOptions
    from export.errors import ExportError

    print(f"{bundle}: renewing its per-class automation (python -m export calibrate)", flush=True)
    try:
        calibrate(
            CalibrateOptions(
                bundle=bundle,
                data=validation,
                automation_f1=POSTURE_AUTOMATION_F1,
                review_precision=POSTURE_REVIEW_PRECISION,
            )
        )
    except ExportError as exc:
        raise SystemExit(f"python -m export calibrate failed: {exc}") from exc


def _automated_classes(bundle: Path) -> list[str]:
    """The postures the shipped bundle issues without a person (docs/review.md)."""
    from service.bundle import read_manifest

    automation = read_manifest(bundle).automation
    return [c.label for c in automation.classes if c.automate] if automation else []


def posture_probabilities(bundle: Path, docs: list) -> tuple[list[str], np.ndarray]:  # type: ignore[type-arg]
    """The served pipeline's probabilities [docs, labels] (windows, aggregation as served)."""
    from families.classify.runtime import ClassifierPipeline
    from service.runtime.loader import load_runtime
    from service.settings import Settings

    loaded = load_runtime(bundle, Settings(bundles_dir=bundle.parent, max_batch_size=8))
    manifest, pipeline = loaded.manifest, loaded.runtime
    assert isinstance(pipeline, ClassifierPipeline)
    probs = np.concatenate(
        [
            pipeline.probabilities([d.text for d in docs[i : i + 16]]).probabilities
            for i in range(0, len(docs), 16)
        ]
    )
    return manifest.labels, probs


def evaluate_posture_bundle(bundle: Path, docs: list, labels: list[str]) -> dict[str, float]:  # type: ignore[type-arg]
    """Micro/macro F1 of the served pipeline at 0.5 and at the bundle's calibrated thresholds."""
    from export.calibration.cuts import micro_macro
    from families.postures.spec import PostureManifest
    from service.bundle import read_manifest

    manifest = read_manifest(bundle)
    assert isinstance(manifest, PostureManifest)
    bundle_labels, probs = posture_probabilities(bundle, docs)
    assert bundle_labels == labels, (bundle_labels, labels)
    truth = np.asarray([[label in d.labels for label in labels] for d in docs])
    micro_half, macro_half = micro_macro(probs, truth, np.full(len(labels), 0.5))
    micro, macro = micro_macro(probs, truth, np.asarray(manifest.postures.thresholds))
    return {
        "documents": len(docs),
        "micro_f1_at_0.5": round(micro_half, 4),
        "macro_f1_at_0.5": round(macro_half, 4),
        "micro_f1": round(micro, 4),
        "macro_f1": round(macro, 4),
    }


def evaluate_options(bundle: Path, report: dict, docs: list) -> dict[str, dict[str, float]]:  # type: ignore[type-arg]
    """Every calibration option's figures: validation and out-of-fold (from the calibration
    report) beside the test split's, scored by the served pipeline with that option's thresholds.
    """
    from export.calibration.bootstrap import Interval, prediction_interval
    from export.calibration.cuts import micro_macro

    labels, probs = posture_probabilities(bundle, docs)
    truth = np.asarray([[label in d.labels for label in labels] for d in docs])
    out = {}
    for name, option in report["summary"].items():
        test_micro, test_macro = micro_macro(probs, truth, np.asarray(option["thresholds"]))
        oof = option["oof_micro_f1"]
        predicted = prediction_interval(
            Interval(oof["estimate"], oof["sd"], oof["low"], oof["high"]),
            report["documents"],
            len(docs),
        )
        out[name] = {
            "shipped": option["shipped"],
            "validation_micro_f1": option["micro_f1"],
            "oof_micro_f1": oof["estimate"],
            "oof_micro_f1_low": oof["low"],
            "oof_micro_f1_high": oof["high"],
            "test_predicted_low": round(predicted.low, 4),
            "test_predicted_high": round(predicted.high, 4),
            "test_micro_f1": round(test_micro, 4),
            "validation_macro_f1": option["macro_f1"],
            "oof_macro_f1": option["oof_macro_f1"],
            "test_macro_f1": round(test_macro, 4),
        }
    return out


def _export_and_calibrate(
    beat: Heartbeat,
    checkpoint: Path,
    out: Path,
    validation: Path,
    variant: VariantRequest | None = None,
) -> Path:
    """``python -m export postures`` then ``python -m export calibrate`` on the validation split."""
    from default_models.posture_training import MAX_LENGTH, STRIDE
    from export.api import calibrate, export_bundle
    from export.calibration.command import CalibrateOptions
    from export.errors import ExportError
    from families.postures.export import PostureOptions

    variant = variant or VariantRequest()
    asked = f"--quantize {variant.quantize}" if variant.quantize else "fp32"
    export = PostureOptions(
        checkpoint=checkpoint,
        out=out,
        name=POSTURE_BUNDLE,
        max_length=MAX_LENGTH,
        stride=STRIDE,
        force=True,
        variant=variant,
    )
    command = "postures"
    try:
        beat.phase(f"python -m export postures ({asked})")
        export_bundle("postures", export)
        command = "calibrate"
        beat.phase(f"python -m export calibrate ({asked})")
        calibrate(
            CalibrateOptions(
                bundle=out,
                data=validation,
                automation_f1=POSTURE_AUTOMATION_F1,
                review_precision=POSTURE_REVIEW_PRECISION,
            )
        )
    except ExportError as exc:
        raise SystemExit(f"python -m export {command} failed: {exc}") from exc
    return out


def build_postures(root: Path, force: bool = False, checkpoint: Path | None = None) -> Path:
    """Train (or take ``checkpoint``, a trained one), export, calibrate, evaluate."""
    bundle = root / "bundles" / POSTURE_BUNDLE
    if _is_built(bundle) and not force:
        validation = root / "work" / POSTURE_BUNDLE / "data" / "validation.jsonl"
        if _automation_is_stale(bundle) and validation.is_file():
            recalibrate(bundle, validation)
        print(f"default posture bundle already built: {bundle}")
        return bundle

    work, staged = fresh_work_dir(root, POSTURE_BUNDLE, checkpoint)
    began = time.perf_counter()
    with Heartbeat() as beat:
        beat.phase("loading torch, generating the corpus")
        from default_models.legal_corpus import POSTURES, generate_splits, write_jsonl
        from default_models.posture_training import train
        from export.calibration.report import summary_table
        from service.bundle import read_manifest

        splits = generate_splits(n_validation=VALIDATION_DOCS)
        for name, docs in splits.items():
            write_jsonl(docs, work / "data" / f"{name}.jsonl")
        if checkpoint is None:
            beat.phase(f"training the default posture model on {len(splits['train'])} documents")
            train(splits["train"], work / "checkpoint")
        else:
            beat.note(f"not training: exporting the trained checkpoint {checkpoint}")
            assert staged is not None
            staged.rename(work / "checkpoint")
        validation = work / "data" / "validation.jsonl"
        chosen = _export_and_calibrate(beat, work / "checkpoint", work / "bundle-fp32", validation)
        # Static INT8 calibrates its activation ranges on (and gates agreement over) a slice of
        # the validation split: every text runs alone, so all 600 would cost a minute.
        quantization: dict[str, object] = {"asked": POSTURE_QUANTIZE}
        if POSTURE_QUANTIZE:
            sample = work / "data" / "int8-validation.jsonl"
            write_jsonl(splits["validation"][:INT8_VALIDATION_DOCS], sample)
            int8 = _export_and_calibrate(
                beat,
                work / "checkpoint",
                work / "bundle-int8",
                validation,
                VariantRequest(
                    quantize=POSTURE_QUANTIZE,
                    validation=sample,
                    fallback_fp32=True,
                    int8_also=ALSO_INT8_FORMATS,
                ),
            )
            beat.phase("held-out gate: test micro-F1 of the fp32 and INT8 bundles")
            test_docs, labels = splits["test"], list(POSTURES)
            chosen, quantization = ship_int8_if_gated(
                chosen,
                int8,
                lambda b: evaluate_posture_bundle(b, test_docs, labels)["micro_f1"],
                "micro-F1 at its calibrated thresholds",
            )
            print(f"INT8: {quantization}", flush=True)
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.move(chosen, bundle)
        for leftover in ("bundle-fp32", "bundle-int8"):
            shutil.rmtree(work / leftover, ignore_errors=True)
        assert list(POSTURES) == read_manifest(bundle).labels
        calibration = json.loads((bundle / "calibration_report.json").read_text())
        beat.phase("scoring the test split with every calibration option")
        options = evaluate_options(bundle, calibration, splits["test"])
        shipped = next(name for name, figures in options.items() if figures["shipped"])
        report = {
            "validation_documents": len(splits["validation"]),
            "test_documents": len(splits["test"]),
            "shipped": shipped,
            "options": options,
            "quantization": quantization,
            "automated_classes": _automated_classes(bundle),
        }
    (work / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    test = {name: figures["test_micro_f1"] for name, figures in options.items()}
    print(summary_table(calibration, test, len(splits["test"])))
    print(f"evaluation saved to {work / 'evaluation.json'}")
    print(f"default posture bundle built in {time.perf_counter() - began:.0f} s: {bundle}")
    return bundle
