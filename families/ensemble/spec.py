"""The ensemble family's manifest (``"task": "ensemble"``): no graph of its own, the member bundles
by name and the sha256 of their ``bundle.json``, per-class weights and thresholds, and the
out-of-fold selection summary (:class:`service.ensemble.EnsembleSpec`)."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from service.ensemble import EnsembleSpec
from service.manifest import ManifestBase, SchemaVersion
from service.review import AutomationSummary


class EnsembleManifest(ManifestBase):
    task: Literal["ensemble"] = "ensemble"
    # No graph, no tokenizer, no files: the members' bundles carry theirs (BundleManifest's
    # references()); the sections stay null in bundle.json.
    has_graph: ClassVar[bool] = False
    onnx: None = None  # type: ignore[assignment]
    tokenizer: None = None  # type: ignore[assignment]
    ensemble: EnsembleSpec

    @model_validator(mode="after")
    def _classes_are_the_labels(self) -> EnsembleManifest:
        if [c.label for c in self.ensemble.classes] != self.labels:
            raise ValueError("ensemble.classes must be the labels, in order")
        names = [m.name for m in self.ensemble.members]
        if len(set(names)) != len(names) or self.name in names:
            raise ValueError("members must be distinct bundles other than the ensemble itself")
        return self

    @property
    def head(self) -> str:
        return "multi-label"

    def references(self) -> list[str]:
        return [m.name for m in self.ensemble.members]

    def bundle_files(self) -> list[tuple[str, str, str | None]]:
        return []  # the members' files are checked when they load

    def model_digest(self) -> str:
        """sha256 over the members' names and manifest digests and the combination (weights,
        thresholds): a new member bundle or new weights give a new digest."""
        return hashlib.sha256(self.ensemble.model_dump_json().encode()).hexdigest()

    def quantization(self) -> str:
        return "none"

    def content_schema_version(self) -> SchemaVersion:
        return 5 if self.ensemble.automation is not None else 4

    @property
    def automation(self) -> AutomationSummary | None:
        return self.ensemble.automation

    def dump_exclude(self) -> dict[str, Any]:
        """Without automation the manifest stays what schema-4 services read."""
        return {"ensemble": {"automation"}} if self.ensemble.automation is None else {}
