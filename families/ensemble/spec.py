"""The ensemble family's manifest (``"task": "ensemble"``): no graph of its own, the member bundles
by name and the sha256 of their ``bundle.json``, per-class weights and thresholds, and the
out-of-fold selection summary (:class:`service.ensemble.EnsembleSpec`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from service.ensemble import EnsembleSpec
from service.manifest import ManifestBase, SchemaVersion


class EnsembleManifest(ManifestBase):
    task: Literal["ensemble"] = "ensemble"
    # No graph, no tokenizer: the members' bundles carry theirs (ManifestBase.has_graph).
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

    def content_schema_version(self) -> SchemaVersion:
        return 4
