"""The export side of the model-family contract: what one family declares, the driver does the rest.

A family (``families/<name>/export.py``) declares its typed options (an
:class:`~export.options.ExportOptions` subclass: its tolerance, window defaults and own fields) and
says how to build its PyTorch module from a checkpoint, how to trace it to ONNX (inputs, output,
dynamic axes), its parity gate (including its reference decode), its INT8 agreement gate, and its
manifest section. Loading the checkpoint, windows, the tokenizer file, graph variants, the
manifest's common fields, ``schema_version`` and the atomic bundle directory belong to the driver
(:mod:`export.driver`), once for every family.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from export.calibration.command import CalibrateOptions
from export.calibration.options import Settings
from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from export.options import ExportOptions
from export.progress import Progress
from export.variants.gate import Agreement
from export.variants.ship import GraphSpec
from service.bundle import ManifestBase, ParityReport
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer

M = TypeVar("M")
Opts = TypeVar("Opts", bound=ExportOptions)


class ExportCommand(Protocol):
    """What ``python -m export <command>`` and :func:`export.api.export_bundle` need of a family:
    its command name, one-line summary, typed options (the command line is generated from them)
    and ``export(options) -> bundle directory`` (raises ExportError; nothing is written then),
    and what ``python -m export calibrate`` needs (``task()``, ``calibrates``,
    ``calibration_help``, ``calibrate``). :class:`ExportFamily` (an ONNX graph traced from a
    checkpoint by the shared driver) is one; :class:`BundleCommand` (a family that writes its
    bundle itself: TF-IDF data files, an ensemble of other bundles) the other."""

    @property
    def command(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def options(self) -> type[BaseModel]: ...

    @property
    def calibrates(self) -> bool: ...

    @property
    def calibration_help(self) -> str: ...

    def task(self) -> str: ...

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]: ...

    def export(self, options: Any) -> Path: ...


@dataclass(frozen=True)
class GateContext(Generic[Opts]):
    """What every gate needs besides the model and the graph."""

    tokenizer: TextTokenizer  # the bundle's own tokenizer.json, as the service loads it
    max_length: int
    stride: int
    pad_id: int
    atol: float
    progress: Progress
    validation: list[str]  # extra texts for the INT8 gate (--validation)
    options: Opts  # the family's typed options


class ExportFamily(ABC, Generic[M, Opts]):
    command: ClassVar[str]  # `python -m export <command>`, `export_bundle(<command>, ...)`
    summary: ClassVar[str]
    options: type[Opts]  # the typed options; the command line is generated from them
    manifest_type: ClassVar[type[ManifestBase]]
    output: ClassVar[str]  # name of the graph output the service reads
    extra_versions: ClassVar[tuple[str, ...]] = ()
    # ``python -m export calibrate`` takes this family's bundles (it overrides :meth:`calibrate`)
    calibrates: ClassVar[bool] = False
    # appended to ``python -m export calibrate --help`` (what it tunes, the --data format)
    calibration_help: ClassVar[str] = ""

    @classmethod
    def task(cls) -> str:
        """The bundle task this family writes: its manifest's ``task`` discriminator."""
        return str(cls.manifest_type.model_fields["task"].default)

    @abstractmethod
    def build(self, raw: RawCheckpoint, options: Opts) -> M:
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
    def parity(self, model: M, session: InferenceSession, ctx: GateContext[Opts]) -> ParityReport:
        """ONNX vs PyTorch within ``ctx.atol`` (and the family's reference decode); raise if not."""

    @abstractmethod
    def agreement(
        self, model: M, fp32: InferenceSession, variant: InferenceSession, ctx: GateContext[Opts]
    ) -> Agreement:
        """How often the INT8 graph decides like the fp32 graph."""

    @abstractmethod
    def sections(self, model: M, ctx: GateContext[Opts]) -> dict[str, BaseModel]:
        """The family's own manifest fields (e.g. ``{"ner": NerSpec(...)}``); the driver adds the
        common ones and ``schema_version`` and builds :attr:`manifest_type` from them."""

    def done_note(self) -> str:
        return ""

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        """Tune a bundle of this family on ``options.data`` in place; the report.

        ``python -m export calibrate`` picks the family by the bundle's task
        (:func:`export.api.calibrate`); a family with ``calibrates = True`` overrides this.
        """
        raise ExportError(f"{options.bundle}: {self.task()} bundles have no calibration")

    def export(self, options: Opts) -> Path:
        """Run the shared driver (:func:`export.driver.run_export`); the bundle directory."""
        from export.driver import run_export  # the driver imports this module

        run_export(self, options)
        return Path(options.out)


class BundleOptions(BaseModel):
    """What every :class:`BundleCommand` takes: where the bundle goes (its own fields besides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path = Field(description="bundle directory to create")


BOpts = TypeVar("BOpts", bound=BundleOptions)


class BundleCommand(ABC, Generic[BOpts]):
    """An :class:`ExportCommand` whose bundle is not traced from a checkpoint by the shared
    driver (a TF-IDF pipeline's data files, an ensemble of other bundles): it declares its typed
    options and writes the bundle itself in :meth:`export`; registered in ``EXPORT_FAMILIES``
    like an :class:`ExportFamily` (``python -m export <command>``, ``export_bundle``)."""

    command: ClassVar[str]
    summary: ClassVar[str]
    options: type[BOpts]
    calibrates: ClassVar[bool] = False
    calibration_help: ClassVar[str] = ""

    @classmethod
    def task(cls) -> str:
        """The bundle task this command writes (its command name)."""
        return cls.command

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        raise ExportError(f"{options.bundle}: {self.task()} bundles have no calibration")

    @abstractmethod
    def export(self, options: BOpts) -> Path:
        """Write the bundle (atomically; nothing on refusal: ExportError); its directory."""
