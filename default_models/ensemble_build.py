"""Build the default posture ensemble (``postures-ensemble``) over the Longformer posture bundle
and the TF-IDF posture bundle, once both exist.

``python -m export ensemble`` (the command a user runs) chooses per-class weights out of fold on
the legal corpus's validation split (the split the members were calibrated on); the test split
is then scored by each member and the ensemble as served: micro/macro-F1 of their decisions and
the classes that ship a mixture, printed and saved beside the work files. Skipped, saying why,
while a member bundle is missing; rebuilt when a member changed since (its ``bundle.json``
sha256 differs from the one the ensemble recorded).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from default_models.posture_build import POSTURE_BUNDLE, VALIDATION_DOCS
from default_models.workdir import fresh_work_dir

ENSEMBLE_BUNDLE = "postures-ensemble"
TFIDF_BUNDLE = "postures-tfidf"
MEMBERS = (POSTURE_BUNDLE, TFIDF_BUNDLE)


def missing_members(bundles: Path) -> list[str]:
    """Member bundles not built yet (by directory, as the default builds name them)."""
    return [m for m in MEMBERS if not (bundles / m / "bundle.json").is_file()]


def _is_current(bundle: Path, bundles: Path) -> bool:
    """An ensemble bundle whose recorded members are the bundles there now."""
    from families.ensemble.spec import EnsembleManifest
    from service.bundle import MANIFEST_FILE, BundleError, read_manifest, sha256_of

    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    if not isinstance(manifest, EnsembleManifest):
        return False
    return all(
        (bundles / m.name / MANIFEST_FILE).is_file()
        and sha256_of(bundles / m.name / MANIFEST_FILE) == m.manifest_sha256
        for m in manifest.ensemble.members
    )


def _decisions(runtime: Any, texts: list[str], labels: list[str]) -> np.ndarray:
    """[documents, labels] decisions as served (the runtime's own prepare/run_prepared)."""
    from service.runtime.family import RequestOptions

    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(texts), len(labels)), dtype=bool)
    for start in range(0, len(texts), 16):
        prepared = runtime.prepare(texts[start : start + 16], RequestOptions())
        (prediction,) = runtime.run_prepared([prepared])
        for d, found in enumerate(prediction.labels):
            for score in found:
                out[start + d, index[score.label]] = True
    return out


def evaluate(bundles: Path, docs: list[Any], labels: list[str]) -> dict[str, dict[str, float]]:
    """Test micro/macro-F1 of each member and of the ensemble, as served."""
    from export.calibration.cuts import micro_macro_of
    from service.runtime.loader import load_runtime
    from service.settings import Settings

    texts = [d.text for d in docs]
    truth = np.asarray([[label in d.labels for label in labels] for d in docs])
    figures = {}
    for name in (*MEMBERS, ENSEMBLE_BUNDLE):
        runtime = load_runtime(
            bundles / name, Settings(bundles_dir=bundles, max_batch_size=8)
        ).runtime
        micro, macro = micro_macro_of(_decisions(runtime, texts, labels), truth)
        figures[name] = {"test_micro_f1": round(micro, 4), "test_macro_f1": round(macro, 4)}
    return figures


def build_posture_ensemble(root: Path, force: bool = False) -> Path | None:
    """The ensemble bundle (None when a member is missing: nothing to combine yet)."""
    bundles = root / "bundles"
    bundle = bundles / ENSEMBLE_BUNDLE
    missing = missing_members(bundles)
    if missing:
        print(f"not building {ENSEMBLE_BUNDLE}: member bundle(s) {missing} not in {bundles}")
        return None
    if not force and _is_current(bundle, bundles):
        print(f"default posture ensemble already built: {bundle}")
        return bundle
    began = time.perf_counter()
    from default_models.legal_corpus import POSTURES, generate_splits, write_jsonl
    from export.api import export_bundle
    from export.errors import ExportError
    from families.ensemble.export import EnsembleOptions

    work, _ = fresh_work_dir(root, ENSEMBLE_BUNDLE, None)
    splits = generate_splits(n_validation=VALIDATION_DOCS)
    validation = work / "data" / "validation.jsonl"
    write_jsonl(splits["validation"], validation)
    options = EnsembleOptions(
        members=MEMBERS,
        bundles_dir=bundles,
        validation=validation,
        out=bundle,
        name=ENSEMBLE_BUNDLE,
        force=True,
    )
    try:
        export_bundle("ensemble", options)
    except ExportError as exc:
        raise SystemExit(f"python -m export ensemble failed: {exc}") from exc
    report = json.loads((bundle / "ensemble-report.json").read_text())
    figures = evaluate(bundles, splits["test"], list(POSTURES))
    evaluation = {
        "test_documents": len(splits["test"]),
        "validation_documents": len(splits["validation"]),
        "mixtures": report["mixtures"],
        "classes": len(report["classes"]),
        "models": figures,
    }
    (work / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    print("| model | test micro-F1 | test macro-F1 |\n|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {f['test_micro_f1']:.3f} | {f['test_macro_f1']:.3f} |")
    print(f"{report['mixtures']} of {len(report['classes'])} classes ship a mixture")
    print(f"default posture ensemble built in {time.perf_counter() - began:.0f} s: {bundle}")
    return bundle
