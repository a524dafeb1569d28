"""The export side of the model-family contract: what one family declares, the driver does the rest.

A family (``families/<name>/export.py``) says how to build its PyTorch module from a checkpoint, how
to trace it to ONNX (inputs, output, dynamic axes), its parity tolerance and gate (including its
reference decode), its INT8 agreement gate, and what it records in the bundle. Loading the
checkpoint, windows, the tokenizer file, graph variants, the manifest's common fields and the atomic
bundle directory belong to the driver (:mod:`export.driver`), once for every family.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from export.checkpoint import RawCheckpoint
from export.progress import Progress
from export.variants.gate import Agreement
from export.variants.ship import GraphSpec
from service.bundle import ManifestBase, ParityReport
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer

M = TypeVar("M")


@dataclass(frozen=True)
class GateContext:
    """What every gate needs besides the model and the graph."""

    tokenizer: TextTokenizer  # the bundle's own tokenizer.json, as the service loads it
    max_length: int
    stride: int
    pad_id: int
    atol: float
    progress: Progress
    validation: list[str]  # extra texts for the INT8 gate (--validation)
    args: argparse.Namespace


class ExportFamily(ABC, Generic[M]):
    command: ClassVar[str]  # `python -m export <command>`
    summary: ClassVar[str]
    output: ClassVar[str]  # name of the graph output the service reads
    default_atol: ClassVar[float]
    atol_help: ClassVar[str]
    max_length_cap: ClassVar[int]  # default window: min(model limit, this)
    stride_divisor: ClassVar[int]  # default stride: window / this
    agreement_unit: ClassVar[str]  # what the INT8 gate counts, for --min-agreement's help
    extra_versions: ClassVar[tuple[str, ...]] = ()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The family's own options (the driver adds the shared ones)."""

    @abstractmethod
    def build(self, raw: RawCheckpoint, args: argparse.Namespace) -> M:
        """The checked PyTorch model; every mismatch is an ExportError before any slow step."""

    @abstractmethod
    def position_limit(self, model: M) -> int:
        """Most tokens per window, special tokens included, the architecture accepts."""

    @abstractmethod
    def graph_spec(self, model: M) -> GraphSpec:
        """What the transformer optimizer (--optimize) needs to know."""

    def check_tokenizer(self, model: M, tokenizer: TextTokenizer) -> None:
        """Refuse a tokenizer the family cannot serve with (e.g. no CLS token)."""

    @abstractmethod
    def export_graph(self, model: M, path: Any) -> list[str]:
        """Trace to ONNX at ``path``; return the graph's input names."""

    @abstractmethod
    def parity(self, model: M, session: InferenceSession, ctx: GateContext) -> ParityReport:
        """ONNX vs PyTorch within ``ctx.atol`` (and the family's reference decode); raise if not."""

    @abstractmethod
    def agreement(
        self, model: M, fp32: InferenceSession, variant: InferenceSession, ctx: GateContext
    ) -> Agreement:
        """How often the INT8 graph decides like the fp32 graph."""

    @abstractmethod
    def manifest(self, model: M, common: dict[str, Any], ctx: GateContext) -> ManifestBase:
        """The bundle manifest: ``common`` holds the fields every family shares."""

    def done_note(self) -> str:
        return ""
