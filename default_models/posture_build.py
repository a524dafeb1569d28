"""Build the built-in default posture bundle if it is not cached yet.

Generate the legal corpus, train a small Longformer on its train split, export it with
``python -m export postures``, calibrate thresholds on the validation split with
``python -m export calibrate`` (the commands a user runs), then measure micro/macro F1 of the
served pipeline on the validation and test splits.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

POSTURE_BUNDLE = "postures-legal"


def _is_built(bundle: Path) -> bool:
    from service.bundle import BundleError, PostureManifest, read_manifest

    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    return isinstance(manifest, PostureManifest) and manifest.postures.calibration is not None


def evaluate_posture_bundle(bundle: Path, docs: list, labels: list[str]) -> dict[str, float]:  # type: ignore[type-arg]
    """Micro/macro F1 of the served pipeline at 0.5 and at the bundle's calibrated thresholds."""
    from export.postures.thresholds import micro_macro
    from service.bundle import PostureManifest, verify_bundle
    from service.postures.pipeline import PosturePipeline
    from service.runtime.cpus import available_cpus
    from service.runtime.session import OnnxSession

    manifest = verify_bundle(bundle)
    assert isinstance(manifest, PostureManifest)
    session = OnnxSession(bundle / manifest.onnx.file, manifest.onnx.output, available_cpus())
    pipeline = PosturePipeline(manifest, bundle, session)
    probs = np.concatenate(
        [
            pipeline.probabilities([d.text for d in docs[i : i + 16]]).probabilities
            for i in range(0, len(docs), 16)
        ]
    )
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


def build_postures(root: Path, force: bool = False) -> Path:
    bundle = root / "bundles" / POSTURE_BUNDLE
    if _is_built(bundle) and not force:
        print(f"default posture bundle already built: {bundle}")
        return bundle
    from default_models.legal_corpus import POSTURES, generate_splits, write_jsonl
    from default_models.posture_training import MAX_LENGTH, STRIDE, train
    from export.cli import main as export_main

    work = root / "work" / POSTURE_BUNDLE
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    began = time.perf_counter()
    splits = generate_splits()
    for name, docs in splits.items():
        write_jsonl(docs, work / "data" / f"{name}.jsonl")
    print(f"training the default posture model on {len(splits['train'])} documents", flush=True)
    train(splits["train"], work / "checkpoint")
    for command in (
        [
            "postures",
            "--checkpoint",
            str(work / "checkpoint"),
            "--out",
            str(bundle),
            "--name",
            POSTURE_BUNDLE,
            "--max-length",
            str(MAX_LENGTH),
            "--stride",
            str(STRIDE),
            "--force",
        ],
        ["calibrate", "--bundle", str(bundle), "--data", str(work / "data" / "validation.jsonl")],
    ):
        if export_main(command) != 0:
            raise SystemExit(f"python -m export {command[0]} failed")
    labels = list(POSTURES)
    report = {
        split: evaluate_posture_bundle(bundle, splits[split], labels)
        for split in ("validation", "test")
    }
    (work / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    for split, figures in report.items():
        print(f"{split}: {figures}")
    print(f"default posture bundle built in {time.perf_counter() - began:.0f} s: {bundle}")
    return bundle
