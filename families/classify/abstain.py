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
from pathlib import Path

import numpy as np

from export.calibration.abstain import AbstainEstimate, estimate_abstain
from export.errors import ExportError
from export.progress import Progress
from families.classify.spec import AbstainSummary
from families.classify.validation import CalibrationOptions, load_classifier, score
from service.bundle import write_manifest


def single_label_gold(
    labels: list[str], gold_labels: list[list[str]], data: Path, what: str = "single-label bundle"
) -> np.ndarray:
    """Gold class index per text (-1: ``[]`` or a label the model does not have: any answer is
    wrong); more than one label is refused, naming the line."""
    index = {label: i for i, label in enumerate(labels)}
    gold = []
    for number, given in enumerate(gold_labels, start=1):
        if len(given) > 1:
            raise ExportError(
                f"{data}:{number}: {len(given)} labels; a {what} takes one label per text "
                "(or [] for none of its classes)"
            )
        gold.append(index.get(given[0], -1) if given else -1)
    return np.asarray(gold, dtype=np.int64)


def abstain_decision(
    probs: np.ndarray, gold: np.ndarray, data: Path, options: CalibrationOptions
) -> tuple[AbstainEstimate, AbstainSummary, np.ndarray]:
    """The cross-validated abstain threshold for served probabilities ``probs`` [texts, classes]:
    the estimate, what the manifest records, and whether each top class was right."""
    correct = probs.argmax(axis=1) == gold
    confidence = probs.max(axis=1)
    estimate = estimate_abstain(confidence, correct, options.target_precision, options.settings)
    summary = AbstainSummary(
        data=data.name,
        documents=len(gold),
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
    return estimate, summary, correct


def describe_abstain(estimate: AbstainEstimate, correct: np.ndarray, target: float) -> str:
    return (
        f"abstain threshold {estimate.threshold:.4f} for precision >= {target}: in sample "
        f"precision {estimate.precision:.3f}, coverage {estimate.coverage:.3f}; out of fold "
        f"precision {estimate.oof_precision.estimate:.3f} [{estimate.oof_precision.low:.3f}, "
        f"{estimate.oof_precision.high:.3f}], coverage {estimate.oof_coverage:.3f}; top-1 accuracy "
        f"answering everything {correct.mean():.3f}"
    )


def run_abstain_calibration(options: CalibrationOptions) -> dict[str, object]:
    progress = Progress(total_steps=3)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        manifest, docs, pipeline = load_classifier(options)
        gold = single_label_gold(manifest.labels, [d.labels for d in docs], options.data)
    with progress.step(f"scoring {len(docs)} texts with the bundle's ONNX graph"):
        probs = score(pipeline, docs)
    with progress.step(f"choosing the abstain threshold ({options.settings.folds} folds)"):
        estimate, summary, correct = abstain_decision(probs, gold, options.data, options)
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
        f"{describe_abstain(estimate, correct, options.target_precision)}; written to "
        f"{options.bundle / 'bundle.json'}, report {path}"
    )
    return report
