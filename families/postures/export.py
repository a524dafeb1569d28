"""``python -m export postures``: the Longformer-named entry point of the classify family.

A Longformer multi-label classifier exported exactly as ``python -m export classify`` does
(blocked attention, global attention on CLS), written as a posture bundle (task ``postures``) so
that ``/v1/postures``, existing clients and existing bundles keep their contract.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from export.family import GateContext
from families.classify.export import ClassifierFamily, ClassifierOptions
from families.classify.model import Classifier, build_classifier
from families.postures.spec import PostureManifest, PostureSpec


class PostureOptions(ClassifierOptions):
    """``python -m export postures`` / ``export_bundle("postures", PostureOptions(...))``."""

    agreement_unit: ClassVar[str] = "(document, label) decisions at threshold 0.5"


class PostureFamily(ClassifierFamily[PostureOptions]):
    command = "postures"
    summary = "export a Longformer multi-label classifier to a posture bundle"
    options = PostureOptions
    manifest_type = PostureManifest

    def build(self, raw: RawCheckpoint, options: PostureOptions) -> Classifier:
        if raw.config.model_type != "longformer":
            raise ExportError(
                f"{raw.source}: config model_type is {raw.config.model_type!r}, not longformer "
                "(`python -m export classify` takes any encoder)"
            )
        return build_classifier(raw, "multi-label")

    def aggregation(self, model: Classifier, options: PostureOptions) -> str:
        return str(options.aggregation or "max")

    def sections(self, model: Classifier, ctx: GateContext[PostureOptions]) -> dict[str, BaseModel]:
        spec = PostureSpec(
            thresholds=[0.5] * len(model.labels),
            aggregation=self.aggregation(model, ctx.options),
        )
        return {"postures": spec}

    def done_note(self) -> str:
        return " (thresholds are 0.5 until `python -m export calibrate`)"


FAMILY = PostureFamily()
