"""The classify family's manifest section (``"task": "classify"``): head, thresholds or abstain
threshold, aggregation, and the calibration summaries written by ``python -m export calibrate``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from service.manifest import ManifestBase, SchemaVersion, Strict, updated_fields
from service.review import AutomationSummary


class CalibrationOption(Strict):
    """One candidate threshold rule: in-sample and out-of-fold (cross-validated) figures."""

    validation_micro_f1: float
    validation_macro_f1: float
    oof_micro_f1: float
    oof_micro_f1_low: float = Field(description="bootstrap 95% interval, low end")
    oof_micro_f1_high: float
    oof_macro_f1: float


CalibrationMethod = Literal["at_0.5", "global", "per_class", "shrunk"]


class CalibrationSummary(Strict):
    """Where the thresholds came from (filled by ``python -m export calibrate``).

    The fields from ``method`` on are absent in bundles calibrated before cross-validation.
    """

    data: str
    documents: int
    min_support: int
    micro_f1_at_half: float
    micro_f1_global: float
    micro_f1_per_class: float
    macro_f1_at_half: float
    macro_f1_per_class: float
    method: CalibrationMethod | None = Field(
        default=None, description="the shipped option: best out-of-fold micro-F1"
    )
    folds: int | None = None
    seed: int | None = None
    own_threshold: list[bool] | None = Field(
        default=None, description="per label: kept its own cut under per_class (else global)"
    )
    options: dict[CalibrationMethod, CalibrationOption] | None = None
    automation: AutomationSummary | None = Field(
        default=None,
        description="per-class validated quality, automate flag and review band (schema 5); "
        "absent: the service answers without review fields",
    )


class AbstainSummary(Strict):
    """Where a single-label bundle's abstain threshold came from (``python -m export calibrate``).

    The lowest cut on the top probability whose precision among answered texts reaches the
    target, estimated out of fold (``export.calibration.abstain``).
    """

    data: str
    documents: int
    target_precision: float
    precision: float = Field(description="in-sample precision among answered texts")
    coverage: float = Field(description="in-sample fraction of texts answered")
    oof_precision: float
    oof_precision_low: float = Field(description="bootstrap 95% interval, low end")
    oof_precision_high: float
    oof_coverage: float
    accuracy_without_abstain: float = Field(description="top-1 accuracy answering every text")
    folds: int
    seed: int


ClassifierHead = Literal["multi-label", "single-label"]
PROBLEM_TYPES: dict[str, str] = {
    "multi-label": "multi_label_classification",
    "single-label": "single_label_classification",
}


class ClassifySpec(Strict):
    """How a sequence classifier's logits become decisions.

    multi-label: sigmoid per class, window probabilities combined by ``aggregation`` (max or mean),
    a class is predicted at or above its own threshold. single-label: softmax over the classes,
    windows combined by the mean of their probability vectors (still a distribution), the argmax
    is predicted unless ``abstain_threshold`` is set and the top probability is below it.
    """

    head: ClassifierHead
    problem_type: Literal["multi_label_classification", "single_label_classification"]
    thresholds: list[float] | None = Field(
        default=None, description="multi-label: per-class decision thresholds, label order"
    )
    global_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    abstain_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="single-label: answer no class when the top probability is below this",
    )
    aggregation: Literal["max", "mean"] = Field(
        description="how window probabilities of a long text are combined (single-label: mean)"
    )
    architecture: str = Field(description="the PyTorch class exported, e.g. BertForSequence...")
    global_attention: bool = Field(
        default=False, description="the graph gives the CLS token global attention (Longformer)"
    )
    calibration: CalibrationSummary | AbstainSummary | None = None

    @model_validator(mode="after")
    def _head_is_consistent(self) -> ClassifySpec:
        if PROBLEM_TYPES[self.head] != self.problem_type:
            raise ValueError(f"a {self.head} head has problem_type {PROBLEM_TYPES[self.head]}")
        if self.head == "multi-label":
            if self.thresholds is None:
                raise ValueError("a multi-label head needs thresholds")
            if any(not 0.0 <= t <= 1.0 for t in self.thresholds):
                raise ValueError("thresholds must lie in [0, 1]")
            if self.abstain_threshold is not None:
                raise ValueError("abstain_threshold applies to single-label heads only")
            if isinstance(self.calibration, AbstainSummary):
                raise ValueError("a multi-label head is calibrated per class, not by abstention")
        else:
            if self.thresholds is not None or self.global_threshold is not None:
                raise ValueError("a single-label head has no per-class thresholds")
            if self.aggregation != "mean":
                raise ValueError("a single-label head aggregates windows by their mean")
            if isinstance(self.calibration, CalibrationSummary):
                raise ValueError("a single-label head is calibrated by abstention")
        return self


class ClassifierManifestBase(ManifestBase):
    """A manifest the classify runtime serves: its section seen as a :class:`ClassifySpec`
    (``classify`` bundles, and ``postures`` bundles, which are multi-label classifiers)."""

    @property
    def classifier(self) -> ClassifySpec:
        raise NotImplementedError

    @property
    def automation(self) -> AutomationSummary | None:
        """Per-class automation from the calibration (multi-label), or None: no review fields."""
        calibration = self.classifier.calibration
        return calibration.automation if isinstance(calibration, CalibrationSummary) else None

    def with_decisions(self, **fields: Any) -> ClassifierManifestBase:
        """A copy with the decision fields (thresholds, calibration) replaced, re-validated."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _automation_matches_labels(self) -> ClassifierManifestBase:
        automation = self.automation
        if automation is not None and [c.label for c in automation.classes] != self.labels:
            raise ValueError("calibration.automation must list every label, in label order")
        return self


# The manifests served by the classifier runtime (kept under its former name).
ClassifierManifest = ClassifierManifestBase


class ClassifyManifest(ClassifierManifestBase):
    """A sequence classifier on any encoder: ``/v1/classify``."""

    task: Literal["classify"] = "classify"
    classify: ClassifySpec

    @property
    def head(self) -> str:
        return self.classify.head

    @property
    def classifier(self) -> ClassifySpec:
        return self.classify

    def content_schema_version(self) -> SchemaVersion:
        return 5 if self.automation is not None else 4

    def with_decisions(self, **fields: Any) -> ClassifyManifest:
        updated = self.model_copy(update={"classify": self.classify.model_copy(update=fields)})
        return ClassifyManifest.model_validate(updated_fields(updated))

    @model_validator(mode="after")
    def _one_threshold_per_label(self) -> ClassifyManifest:
        thresholds = self.classify.thresholds
        if thresholds is not None and len(thresholds) != len(self.labels):
            raise ValueError(f"need one threshold per label ({len(self.labels)})")
        if self.classify.head == "single-label" and len(self.labels) < 2:
            raise ValueError("a single-label head needs at least two labels")
        return self
