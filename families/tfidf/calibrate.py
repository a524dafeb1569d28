"""``python -m export calibrate`` on a TF-IDF bundle: the classifier calibration, unchanged.

The validation documents are scored by the bundle as the service loads it (numpy vectorizers and
linear layer, :class:`families.tfidf.runtime.TfidfModel`); from those probabilities on it is the
posture/classify multi-label calibration
(:func:`families.classify.calibrate.calibrate_probabilities`): cross-validated threshold options
with the never-worse rule, per-class automation and review band, the JSON/Markdown/PNG report.
Single-label TF-IDF bundles keep the abstain threshold they were exported with.
"""

from __future__ import annotations

import sys

import numpy as np

from export.calibration.command import CalibrateOptions, automation_settings
from export.calibration.options import Settings
from export.errors import ExportError
from export.progress import Progress
from families.classify.calibrate import TEST_SPLIT_WARNING, calibrate_probabilities
from families.classify.validation import CalibrationOptions, read_documents
from families.tfidf.runtime import TfidfModel
from families.tfidf.spec import TfidfManifest
from service.bundle import BundleError, verify_bundle

BATCH = 64  # documents vectorized at once while scoring


def run_tfidf_calibration(options: CalibrateOptions, settings: Settings) -> dict[str, object]:
    """Tune the thresholds (and automation) of the TF-IDF bundle ``options.bundle`` in place."""
    print(TEST_SPLIT_WARNING, file=sys.stderr)
    calibration = CalibrationOptions(
        bundle=options.bundle,
        data=options.data,
        settings=settings,
        report=options.report,
        plots=not options.no_plots,
        automation=automation_settings(options),
    )
    progress = Progress(total_steps=5 if calibration.automation else 4)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        try:
            manifest = verify_bundle(options.bundle)
        except BundleError as exc:
            raise ExportError(str(exc)) from exc
        if not isinstance(manifest, TfidfManifest):
            raise ExportError(f"{options.bundle} is a {manifest.task} bundle, not tfidf")
        if manifest.tfidf.head != "multi-label":
            raise ExportError(
                f"{options.bundle} is a single-label TF-IDF bundle; calibration tunes multi-label "
                "ones (set --abstain-threshold when exporting it)"
            )
        docs = read_documents(options.data)
        if len(docs) < 2 * settings.folds:
            raise ExportError(
                f"{options.data}: {len(docs)} documents; {settings.folds}-fold "
                f"cross-validation needs at least {2 * settings.folds}"
            )
        model = TfidfModel.load(manifest, options.bundle)
    with progress.step(f"scoring {len(docs)} documents with the bundle's vectorizers"):
        texts = [d.text for d in docs]
        probs = np.concatenate(
            [model.probabilities(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        )
    return calibrate_probabilities(calibration, manifest, docs, probs, progress)
