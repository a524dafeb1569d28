"""The span bundle's manifest: ``task: span``, served by ``/v1/entities``.

The graph's one output ``span_probs`` is ``[batch, tokens, 3 * types]``: the start-pointer
probabilities of every type, then the end-pointer ones, then the inside-span ones (a shared inside
head is repeated for every type in the graph), all sigmoids. Decoding is
:mod:`families.span.decoding` with the per-type thresholds below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from service.manifest import ManifestBase, SchemaVersion, Strict

OUTPUT = "span_probs"
Part = Literal["start", "end", "inside"]
PARTS: tuple[Part, ...] = ("start", "end", "inside")
SpanOption = Literal["at_0.5", "global", "per_class", "shrunk"]


class SpanThresholds(Strict):
    """One entity type's cuts: a word opens, closes or lies inside a span at or above them."""

    start: float = Field(ge=0.0, le=1.0)
    end: float = Field(ge=0.0, le=1.0)
    inside: float = Field(ge=0.0, le=1.0)


class SpanOptionFigures(Strict):
    """One calibration option: span micro-F1 in sample and out of fold (cross-validated)."""

    validation_micro_f1: float
    oof_micro_f1: float
    oof_micro_f1_low: float = Field(description="bootstrap 95% interval, low end")
    oof_micro_f1_high: float


class SpanCalibration(Strict):
    """Where the thresholds came from (``python -m export calibrate`` on a span bundle)."""

    data: str
    documents: int
    method: SpanOption = Field(description="the shipped option (simplest not beaten out of fold)")
    folds: int
    seed: int
    own_threshold: list[bool] = Field(description="per type: kept its own cut under per_class")
    options: dict[SpanOption, SpanOptionFigures]


class SpanSpec(Strict):
    head: Literal["span"] = "span"
    inside: Literal["per-type", "shared"] = Field(
        description="the checkpoint's inside head: one output per type, or one for all types"
    )
    thresholds: list[SpanThresholds] = Field(description="per entity type, label order")
    nested: bool = Field(
        default=False,
        description="a start inside an accepted span of the same type opens a span of its own "
        "(nested entities of one type); spans of different types may always overlap",
    )
    calibration: SpanCalibration | None = None


class SpanManifest(ManifestBase):
    """Labels are the entity types (no B-/I- tags)."""

    task: Literal["span"] = "span"
    span: SpanSpec

    @property
    def head(self) -> str:
        return self.span.head

    def content_schema_version(self) -> SchemaVersion:
        return 4

    def with_thresholds(
        self, thresholds: list[SpanThresholds], calibration: SpanCalibration
    ) -> SpanManifest:
        """A copy with calibrated thresholds, re-validated."""
        spec = self.span.model_copy(update={"thresholds": thresholds, "calibration": calibration})
        return SpanManifest.model_validate(self.model_copy(update={"span": spec}).model_dump())

    @model_validator(mode="after")
    def _one_threshold_set_per_type(self) -> SpanManifest:
        if len(self.span.thresholds) != len(self.labels):
            raise ValueError(f"need one threshold set per entity type ({len(self.labels)})")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("entity types must be distinct")
        if self.onnx.output != OUTPUT:
            raise ValueError(f"a span graph's output is {OUTPUT!r}")
        return self
