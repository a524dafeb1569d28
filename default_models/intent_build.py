"""Build the built-in default intent bundle (``intent-food``) if it is not cached yet.

Generate the intent corpus, fine-tune a MiniLM sequence classifier on its train split, export it
with ``python -m export classify``, choose its abstain threshold on the dev split with
``python -m export calibrate`` (the commands a user runs), then score the held-out-template test
split through the service's own classifier pipeline on the bundle's ONNX graph.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from default_models.int8_gate import ship_int8_if_gated
from default_models.workdir import fresh_work_dir
from export.progress import Heartbeat
from export.variants.request import Quantization, VariantRequest

INTENT_BUNDLE = "intent-food"
INTENT_TRAIN_PER_INTENT = 200  # training utterances per intent (and as many out of scope)
INTENT_EPOCHS = 3
# Precision among answered dev utterances the abstain threshold must reach (out-of-scope ones
# count as wrong whatever the model answers).
INTENT_TARGET_PRECISION = 0.9
# Static INT8 (ranges calibrated on the dev split) when it passes both gates
# (default_models.int8_gate; each bundle gets its own abstain threshold), else fp32 with the
# reason in bundle.json; None: fp32 without trying.
INTENT_QUANTIZE: Quantization | None = "int8-static"


def _is_built(bundle: Path) -> bool:
    from families.classify.spec import ClassifyManifest
    from service.bundle import BundleError, read_manifest

    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    return isinstance(manifest, ClassifyManifest) and manifest.classify.calibration is not None


def intent_probabilities(bundle: Path, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """The served pipeline's probabilities [texts, intents] (windows, aggregation as served)."""
    from families.classify.runtime import ClassifierPipeline
    from service.runtime.loader import load_runtime
    from service.settings import Settings

    loaded = load_runtime(bundle, Settings(bundles_dir=bundle.parent, max_batch_size=8))
    manifest, pipeline = loaded.manifest, loaded.runtime
    assert isinstance(pipeline, ClassifierPipeline)
    probs = np.concatenate(
        [pipeline.probabilities(texts[i : i + 64]).probabilities for i in range(0, len(texts), 64)]
    )
    return list(manifest.labels), probs


def evaluate_intents(bundle: Path, utterances: list[Any]) -> dict[str, Any]:
    """:func:`intent_figures` of the bundle as served, at its calibrated abstain threshold."""
    from families.classify.spec import ClassifyManifest
    from service.bundle import read_manifest

    labels, probs = intent_probabilities(bundle, [u.text for u in utterances])
    manifest = read_manifest(bundle)
    assert isinstance(manifest, ClassifyManifest)
    return intent_figures(labels, probs, manifest.classify.abstain_threshold, utterances)


def intent_figures(
    labels: list[str], probs: np.ndarray, threshold: float | None, utterances: list[Any]
) -> dict[str, Any]:
    """Accuracy and macro-F1 over in-scope utterances (argmax, no abstain), then the abstain
    rule's coverage of them, precision among everything answered (an out-of-scope utterance
    answered is wrong) and the share of out-of-scope utterances turned down."""
    from sklearn.metrics import classification_report, f1_score

    threshold = threshold or 0.0
    inside = np.asarray([u.intent is not None for u in utterances])
    gold = np.asarray([labels.index(u.intent) if u.intent else -1 for u in utterances])
    top, confidence = probs.argmax(1), probs.max(1)
    answered = confidence >= threshold
    right = top == gold
    classes = list(range(len(labels)))
    return {
        "utterances": int(inside.sum()),
        "out_of_scope": int((~inside).sum()),
        "accuracy": round(float(right[inside].mean()), 4),
        "macro_f1": round(
            float(f1_score(gold[inside], top[inside], labels=classes, average="macro")), 4
        ),
        "abstain_threshold": round(float(threshold), 4),
        "in_scope_answered": round(float(answered[inside].mean()), 4),
        "precision_answered": round(float(right[answered].mean()) if answered.any() else 0.0, 4),
        "out_of_scope_rejected": (
            round(float((~answered[~inside]).mean()), 4) if (~inside).any() else None
        ),
        "report": classification_report(
            gold[inside],
            top[inside],
            labels=classes,
            target_names=labels,
            digits=3,
            zero_division=0,
        ),
    }


def _export_and_calibrate(
    beat: Heartbeat, checkpoint: Path, out: Path, dev: Path, variant: VariantRequest | None = None
) -> Path:
    """``python -m export classify`` then ``python -m export calibrate`` (abstain threshold)."""
    from default_models.intent_training import MAX_LENGTH
    from export.api import calibrate, export_bundle
    from export.calibration.command import CalibrateOptions
    from export.errors import ExportError
    from families.classify.export import ClassifyOptions

    variant = variant or VariantRequest()
    asked = f"--quantize {variant.quantize}" if variant.quantize else "fp32"
    export = ClassifyOptions(
        checkpoint=checkpoint,
        out=out,
        name=INTENT_BUNDLE,
        max_length=2 * MAX_LENGTH,
        stride=MAX_LENGTH // 2,
        force=True,
        variant=variant,
    )
    command = "classify"
    try:
        beat.phase(f"python -m export classify ({asked})")
        export_bundle("classify", export)
        command = "calibrate"
        beat.phase(f"python -m export calibrate ({asked})")
        calibrate(CalibrateOptions(bundle=out, data=dev, target_precision=INTENT_TARGET_PRECISION))
    except ExportError as exc:
        raise SystemExit(f"python -m export {command} failed: {exc}") from exc
    return out


def build_intent(
    root: Path, force: bool = False, epochs: int = INTENT_EPOCHS, checkpoint: Path | None = None
) -> Path:
    """Train (or take ``checkpoint``, one trained by this recipe), export, calibrate the abstain
    threshold, evaluate; skip when cached."""
    bundle = root / "bundles" / INTENT_BUNDLE
    if _is_built(bundle) and not force:
        print(f"default intent bundle already built: {bundle}")
        return bundle

    work, staged = fresh_work_dir(root, INTENT_BUNDLE, checkpoint)
    began = time.perf_counter()
    with Heartbeat() as beat:
        beat.phase("loading torch, generating the corpus")
        from default_models.intent_corpus import generate_splits, write_jsonl
        from default_models.intent_training import train

        splits = generate_splits(per_intent={"train": INTENT_TRAIN_PER_INTENT})
        for name, utterances in splits.items():
            write_jsonl(utterances, work / "data" / f"{name}.jsonl")
        if checkpoint is None:
            beat.phase(f"training the default intent model on {len(splits['train'])} utterances")
            train(splits["train"], work / "checkpoint", epochs=epochs, log=beat.note)
        else:
            beat.note(f"not training: exporting the trained checkpoint {checkpoint}")
            assert staged is not None
            staged.rename(work / "checkpoint")
        dev = work / "data" / "dev.jsonl"
        chosen = _export_and_calibrate(beat, work / "checkpoint", work / "bundle-fp32", dev)
        quantization: dict[str, object] = {"asked": INTENT_QUANTIZE}
        if INTENT_QUANTIZE:
            variant = VariantRequest(quantize=INTENT_QUANTIZE, validation=dev, fallback_fp32=True)
            int8 = _export_and_calibrate(
                beat, work / "checkpoint", work / "bundle-int8", dev, variant
            )
            beat.phase("held-out gate: test macro-F1 of the fp32 and INT8 bundles")
            test = splits["test"]
            chosen, quantization = ship_int8_if_gated(
                chosen, int8, lambda b: evaluate_intents(b, test)["macro_f1"], "macro-F1"
            )
            print(f"INT8: {quantization}", flush=True)
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.move(chosen, bundle)
        for leftover in ("bundle-fp32", "bundle-int8"):
            shutil.rmtree(work / leftover, ignore_errors=True)
        beat.phase("scoring the dev and held-out test splits through the bundle")
        report = {split: evaluate_intents(bundle, splits[split]) for split in ("dev", "test")}
    (work / "evaluation.json").write_text(
        json.dumps({**report, "quantization": quantization}, indent=2) + "\n"
    )
    for split, figures in report.items():
        print(
            f"{split}: accuracy {figures['accuracy']}, macro-F1 {figures['macro_f1']} "
            f"({figures['utterances']} utterances from held-out templates); abstain at "
            f"{figures['abstain_threshold']}: {figures['in_scope_answered']:.1%} answered, "
            f"precision {figures['precision_answered']}, {figures['out_of_scope_rejected']:.1%} "
            f"of {figures['out_of_scope']} out-of-scope turned down"
        )
    print(report["test"]["report"])
    print(f"default intent bundle built in {time.perf_counter() - began:.0f} s: {bundle}")
    return bundle
