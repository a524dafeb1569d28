"""``python -m export calibrate`` on a single-label bundle: the abstain threshold.

Every validation text is scored by the bundle's own graph through the service's pipeline (same
windows, same mean aggregation); the top class is right or wrong against the gold label (a text
labelled ``[]`` has no intent: any answer is wrong). The threshold is the lowest cut on the top
probability whose precision among answered texts reaches ``--target-precision``
(:mod:`export.calibration.abstain`), with its out-of-fold precision and coverage; below it the
service answers ``"labels": []``.
"""

from __future__ import annotations

import json

import numpy as np

from export.calibration.abstain import estimate_abstain
from export.errors import ExportError
from export.progress import Progress
from families.classify.spec import AbstainSummary
from families.classify.validation import CalibrationOptions, load_classifier, score
from service.bundle import write_manifest


def run_abstain_calibration(options: CalibrationOptions) -> dict[str, object]:
    progress = Progress(total_steps=3)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        manifest, docs, pipeline = load_classifier(options)
        index = {label: i for i, label in enumerate(manifest.labels)}
        gold = []
        for number, doc in enumerate(docs, start=1):
            if len(doc.labels) > 1:
                raise ExportError(
                    f"{options.data}:{number}: {len(doc.labels)} labels; a single-label bundle "
                    "takes one label per text (or [] for none of its classes)"
                )
            gold.append(index.get(doc.labels[0], -1) if doc.labels else -1)
    with progress.step(f"scoring {len(docs)} texts with the bundle's ONNX graph"):
        probs = score(pipeline, docs)
        correct = probs.argmax(axis=1) == np.asarray(gold)
        confidence = probs.max(axis=1)
    with progress.step(f"choosing the abstain threshold ({options.settings.folds} folds)"):
        estimate = estimate_abstain(confidence, correct, options.target_precision, options.settings)
        summary = AbstainSummary(
            data=options.data.name,
            documents=len(docs),
            target_precision=options.target_precision,
            precision=estimate.precision,
            coverage=estimate.coverage,
            oof_precision=estimate.oof_precision.estimate,
            oof_precision_low=estimate.oof_precision.low,
            oof_precision_high=estimate.oof_precision.high,
            oof_coverage=estimate.oof_coverage,
            accuracy_without_abstain=float(correct.mean()),
            folds=options.settings.folds,
            seed=options.settings.seed,
        )
        updated = manifest.with_decisions(
            abstain_threshold=float(estimate.threshold), calibration=summary
        )
        report = {"bundle": manifest.name, "abstain_threshold": estimate.threshold,
                  **summary.model_dump()}  # fmt: skip
        path = options.report or options.bundle / "calibration_report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(updated, options.bundle)
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"abstain threshold {estimate.threshold:.4f} for precision >= {options.target_precision}: "
        f"in sample precision {estimate.precision:.3f}, coverage {estimate.coverage:.3f}; out of "
        f"fold precision {estimate.oof_precision.estimate:.3f} [{estimate.oof_precision.low:.3f}, "
        f"{estimate.oof_precision.high:.3f}], coverage {estimate.oof_coverage:.3f}; top-1 accuracy "
        f"answering everything {correct.mean():.3f}; written to {options.bundle / 'bundle.json'}, "
        f"report {path}"
    )
    return report
