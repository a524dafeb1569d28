"""What both calibrations (thresholds and abstain) read: the options, the labelled validation
split, the bundle's own classifier pipeline and its served probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from export.calibration.automation import AutomationSettings
from export.calibration.options import Settings
from export.errors import ExportError
from families.classify.runtime import ClassifierPipeline
from families.classify.spec import ClassifierManifest
from service.bundle import verify_bundle
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession


class LabelledDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    labels: list[str]


@dataclass(frozen=True)
class CalibrationOptions:
    bundle: Path
    data: Path
    settings: Settings = field(default_factory=Settings)
    report: Path | None = None  # the JSON; Markdown and PNGs go beside it
    batch_size: int = 8
    plots: bool = True
    target_precision: float = 0.9  # single-label bundles: precision among answered texts
    # multi-label bundles: per-class automation and review band (None: none computed)
    automation: AutomationSettings | None = field(default_factory=AutomationSettings)


def read_documents(path: Path) -> list[LabelledDocument]:
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            docs.append(LabelledDocument.model_validate_json(line))
        except ValidationError as exc:
            raise ExportError(f"{path}:{number}: not a {{'text', 'labels'}} object: {exc}") from exc
    if not docs:
        raise ExportError(f"{path}: no documents")
    return docs


def load_classifier(
    options: CalibrationOptions,
) -> tuple[ClassifierManifest, list[LabelledDocument], ClassifierPipeline]:
    """The bundle (a classifier), its validation documents, and the service's own pipeline."""
    manifest = verify_bundle(options.bundle)
    if not isinstance(manifest, ClassifierManifest):
        raise ExportError(
            f"{options.bundle} is a {manifest.task} bundle; calibration needs a classifier "
            "(classify or postures)"
        )
    classifier: ClassifierManifest = manifest
    docs = read_documents(options.data)
    minimum = 2 * options.settings.folds
    if len(docs) < minimum:
        raise ExportError(
            f"{options.data}: {len(docs)} documents; {options.settings.folds}-fold "
            f"cross-validation needs at least {minimum}"
        )
    session = OnnxSession(
        options.bundle / manifest.onnx.file, manifest.onnx.output, available_cpus()
    )
    pipeline = ClassifierPipeline(
        classifier, options.bundle, session, max_batch_size=options.batch_size
    )
    return classifier, docs, pipeline


def score(pipeline: ClassifierPipeline, docs: list[LabelledDocument]) -> np.ndarray:
    """Served (windowed, aggregated) probabilities of every document."""
    return np.concatenate(
        [
            pipeline.probabilities([d.text for d in docs[i : i + 16]]).probabilities
            for i in range(0, len(docs), 16)
        ]
    )
