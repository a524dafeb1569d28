"""The postures family's manifest section (``"task": "postures"``): a Longformer multi-label
classifier of long legal documents, served by the classify runtime (seen through ``classifier``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from families.classify.spec import CalibrationSummary, ClassifierManifestBase, ClassifySpec
from service.manifest import SchemaVersion, Strict, updated_fields


class PostureSpec(Strict):
    problem_type: Literal["multi_label_classification"] = "multi_label_classification"
    thresholds: list[float] = Field(description="per-class decision thresholds, label order")
    global_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    aggregation: Literal["max", "mean"] = Field(
        default="max", description="how window probabilities of a long document are combined"
    )
    calibration: CalibrationSummary | None = None

    @model_validator(mode="after")
    def _thresholds_are_probabilities(self) -> PostureSpec:
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError("thresholds must lie in [0, 1]")
        return self


class PostureManifest(ClassifierManifestBase):
    task: Literal["postures"] = "postures"
    postures: PostureSpec

    @property
    def head(self) -> str:
        return "multi-label"

    @property
    def classifier(self) -> ClassifySpec:
        """The posture section seen as the multi-label classifier it is."""
        spec = self.postures
        return ClassifySpec(
            head="multi-label",
            problem_type=spec.problem_type,
            thresholds=spec.thresholds,
            global_threshold=spec.global_threshold,
            aggregation=spec.aggregation,
            architecture="LongformerForSequenceClassification",
            global_attention=True,
            calibration=spec.calibration,
        )

    def content_schema_version(self) -> SchemaVersion:
        return 5 if self.automation is not None else 1

    def with_decisions(self, **fields: Any) -> PostureManifest:
        """A copy with the decision fields (thresholds, calibration) replaced, re-validated."""
        updated = self.model_copy(update={"postures": self.postures.model_copy(update=fields)})
        return PostureManifest.model_validate(updated_fields(updated))

    @model_validator(mode="after")
    def _one_threshold_per_label(self) -> PostureManifest:
        if len(self.postures.thresholds) != len(self.labels):
            raise ValueError(f"need one threshold per label ({len(self.labels)})")
        return self
