"""``python -m export postures``: the Longformer-named entry point of the classify family.

A Longformer multi-label classifier exported exactly as ``python -m export classify`` does
(blocked attention, global attention on CLS), written as a posture bundle (task ``postures``) so
that ``/v1/postures``, existing clients and existing bundles keep their contract.
"""

from __future__ import annotations

import argparse
from typing import Any

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from export.family import GateContext
from families.classify.export import ClassifyFamily
from families.classify.model import Classifier, build_classifier
from service.bundle import PostureManifest, PostureSpec, schema_version_for


class PostureFamily(ClassifyFamily):
    command = "postures"
    summary = "export a Longformer multi-label classifier to a posture bundle"
    agreement_unit = "(document, label) decisions at threshold 0.5"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self._add_shared_arguments(parser, "")

    def build(self, raw: RawCheckpoint, args: argparse.Namespace) -> Classifier:
        if raw.config.model_type != "longformer":
            raise ExportError(
                f"{raw.source}: config model_type is {raw.config.model_type!r}, not longformer "
                "(`python -m export classify` takes any encoder)"
            )
        return build_classifier(raw, "multi-label")

    def aggregation(self, model: Classifier, args: argparse.Namespace) -> str:
        return str(args.aggregation or "max")

    def manifest(
        self, model: Classifier, common: dict[str, Any], ctx: GateContext
    ) -> PostureManifest:
        spec = PostureSpec(
            thresholds=[0.5] * len(common["labels"]),
            aggregation=self.aggregation(model, ctx.args),
        )
        draft = PostureManifest.model_construct(**common, postures=spec)
        return PostureManifest(**common, postures=spec, schema_version=schema_version_for(draft))

    def done_note(self) -> str:
        return " (thresholds are 0.5 until `python -m export calibrate`)"
