"""What every bundle manifest shares, whatever its family: the ONNX graph, the tokenizer, the
export record, the parity report, the graph variant, the self-check sample, and the schema-version
rules (all in this module), and ``BundleError`` / ``sha256_of`` (re-exported by ``service.bundle``),
which a family's runtime may use without importing the family table. A family adds its own
section in ``families/<name>/spec.py``; ``service.bundle`` builds the manifest union from the
registered families.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.review import AutomationSummary
from service.runtime.cpu_features import INT8_DOT_PRODUCT, CpuInfo

# Newest understood. Bundles are written with the lowest version that describes them: 1 for a
# plain fp32 BIO BERT-CRF or posture bundle, 2 with a graph variant, 3 with a self-check sample
# (every bundle exported now) or an NER head, tag scheme or layout beyond the first round's, 4 for
# a classifier bundle (task "classify": any encoder, multi- or single-label) or a variant with
# static INT8, its calibration or a refused quantization, 5 for a classifier whose calibration
# carries per-class automation (validated quality, ``automate``, review band), 6 for a bundle that
# carries more than one INT8 graph (``int8_graphs``: the service picks the one for its CPU). Older
# services then refuse them by version.
SCHEMA_VERSION = 6
SchemaVersion = Literal[1, 2, 3, 4, 5, 6]
Int8FormatName = Literal["u8s8-reduced", "u8u8", "u8s8"]


MANIFEST_FILE = "bundle.json"  # every bundle's manifest, beside the files it names


class BundleError(RuntimeError):
    """A bundle directory is missing, malformed or does not match its manifest."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnnxInfo(Strict):
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    opset: int
    inputs: list[str] = Field(description="graph input names, e.g. input_ids, attention_mask")
    output: str = Field(description="name of the output the service reads")


class TokenizerInfo(Strict):
    file: str = "tokenizer.json"
    max_length: int = Field(ge=4, description="tokens per model call, special tokens included")
    stride: int = Field(ge=0, description="tokens shared by consecutive windows of a long text")
    pad_token_id: int = 0
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="hash of the tokenizer file, checked at load (absent in bundles before it)",
    )

    @model_validator(mode="after")
    def _stride_fits(self) -> TokenizerInfo:
        if self.stride >= self.max_length - 2:
            raise ValueError("stride must be smaller than max_length minus the special tokens")
        return self


class ExportInfo(Strict):
    created_at: str
    source: str
    duration_s: float
    versions: dict[str, str]


class ParityReport(Strict):
    """How closely the ONNX graph reproduces the PyTorch model (filled by the export gate)."""

    atol: float
    max_abs_diff: float
    cases: int
    tag_agreement: float | None = None
    details: list[dict[str, float | int | str]] = []


class CalibrationInfo(Strict):
    """Static INT8's activation ranges: from which texts and how they were cut."""

    method: Literal["minmax", "percentile", "entropy"]
    percentile: float | None = Field(default=None, description="percentile method only")
    texts: int = Field(ge=1, description="calibration texts, each run alone (no padding)")
    tokens: int = Field(ge=1, description="real tokens they hold")
    source: str = Field(description="where the texts came from")


class VariantInfo(Strict):
    """How the shipped graph differs from the plain fp32 export, and the accuracy gate it passed.

    Absent (``null``) in plain fp32 bundles. Bundles that carry it are written as schema version 2,
    so a service that predates variants refuses them by version instead of by an unknown field.
    """

    optimized: bool = Field(default=False, description="transformer fusions applied")
    optimizer: str | None = Field(default=None, description="what ran, or why it was skipped")
    fusions: dict[str, int] = Field(default_factory=dict, description="fused operator counts")
    quantization: Literal["int8-dynamic", "int8-static"] | None = Field(
        default=None,
        description="int8-static: calibrated activation ranges, answers independent of "
        "batch-mates; int8-dynamic: activation scales per call (per batch)",
    )
    calibration: CalibrationInfo | None = Field(
        default=None, description="how int8-static's activation ranges were measured"
    )
    quantization_refused: str | None = Field(
        default=None,
        description="why INT8 was asked for but fp32 ships (the accuracy gate's message)",
    )
    int8_format: Int8FormatName | None = Field(
        default=None, description="activation x weight types; absent before schema 3 (u8s8)"
    )
    requires_cpu_features: list[str] = Field(
        default_factory=list,
        description="the graph is exact only on CPUs with one of these /proc/cpuinfo flags",
    )
    validated_on: CpuInfo | None = Field(
        default=None, description="the CPU the accuracy gate ran on"
    )
    per_channel: bool = False
    kept_fp32: list[str] = Field(
        default_factory=list, description="node-name regexes left unquantized (--keep-fp32)"
    )
    kept_fp32_nodes: int = Field(default=0, description="nodes left fp32 in all")
    kept_fp32_sensitive: list[str] = Field(
        default_factory=list,
        description="products the sensitivity search kept fp32 so that the gate passes",
    )
    min_agreement: float | None = Field(default=None, description="the gate's required rate")
    agreement: float | None = Field(
        default=None,
        description="words (NER) or (document, label) decisions (postures) agreeing with fp32",
    )
    exact_match: float | None = Field(default=None, description="texts decided identically")
    max_abs_diff_vs_fp32: float | None = None
    validation_size: int | None = Field(default=None, description="texts in the gate sample")
    fp32_sha256: str | None = Field(default=None, description="the fp32 graph it was made from")
    int8_formats_refused: dict[str, str] = Field(
        default_factory=dict,
        description="INT8 formats asked for beside the shipped graph (--int8-also) that the "
        "bundle does not carry, and why (gate failed, CPU cannot validate them)",
    )

    def required_cpu_features(self) -> list[str]:
        """Any-of CPU flags this graph needs; INT8 bundles from before formats were recorded are
        u8 x s8 with 8-bit weights, which saturates without a dot-product instruction."""
        if self.quantization is not None and self.int8_format is None:
            return list(INT8_DOT_PRODUCT)
        return self.requires_cpu_features

    @property
    def needs_v4(self) -> bool:
        """Fields a schema-3 service does not know."""
        return (
            self.quantization == "int8-static"
            or self.calibration is not None
            or self.quantization_refused is not None
        )

    @property
    def needs_v6(self) -> bool:
        return bool(self.int8_formats_refused)


class SelfCheck(Strict):
    """A small sample with the shipped graph's outputs on the export CPU, re-run at start-up."""

    texts: list[str] = Field(min_length=1)
    outputs: list[list[list[float]]] = Field(
        description="per text: content-token rows (token outputs) or one row (sequence outputs)"
    )
    atol: float = Field(gt=0, description="max abs output difference allowed on another CPU")
    validated_on: CpuInfo

    @model_validator(mode="after")
    def _one_output_per_text(self) -> SelfCheck:
        if len(self.outputs) != len(self.texts):
            raise ValueError("selfcheck needs one output per text")
        return self


class Int8Graph(Strict):
    """One more INT8 graph of the same model, in another format (``int8_graphs``): its own file
    and sha256, the export's accuracy gate it passed on its own, and its own self-check sample.
    The service serves the fastest graph valid on its CPU (``service.runtime.graph_choice``)."""

    file: str = Field(description="e.g. model.int8-u8s8.onnx, beside model.onnx")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    quantization: Literal["int8-dynamic", "int8-static"]
    int8_format: Int8FormatName
    requires_cpu_features: list[str] = Field(
        default_factory=list,
        description="the graph is exact only on CPUs with one of these /proc/cpuinfo flags",
    )
    validated_on: CpuInfo = Field(description="the CPU the accuracy gate ran on")
    kept_fp32_nodes: int = Field(default=0, description="nodes left fp32 in all")
    kept_fp32_sensitive: list[str] = Field(
        default_factory=list,
        description="products the sensitivity search kept fp32 so that the gate passes",
    )
    min_agreement: float = Field(description="the gate's required rate")
    agreement: float = Field(description="words or label decisions agreeing with fp32")
    exact_match: float = Field(description="texts decided identically")
    max_abs_diff_vs_fp32: float
    validation_size: int = Field(description="texts in the gate sample")
    selfcheck: SelfCheck = Field(description="this graph's own sample, re-run at start-up")


class BundleManifest(Strict):
    """What the service asks of every family's manifest, whatever runs the model: identity,
    labels, the export record and parity report (declared by each subclass as fields), and the
    hooks below. :class:`ManifestBase` is the ONNX families' manifest; a family that runs no ONNX
    graph subclasses this directly and says which files its bundle holds (``bundle_files``)."""

    # True when the manifest carries an ONNX graph and tokenizer (``onnx``/``tokenizer``
    # sections, the ONNX fields of /v1/models, a self-check): :class:`ManifestBase`. A bundle
    # without one either runs its own files through the family's ``session`` factory (TF-IDF)
    # or runs other loaded models (``references()``, the family's ``composed`` factory).
    has_graph: ClassVar[bool] = False

    if TYPE_CHECKING:  # declared as fields by the subclasses (kept out of the field order)
        task: str
        schema_version: int
        name: str
        version: str
        labels: list[str]
        export: ExportInfo
        parity: ParityReport

    @property
    def head(self) -> str:
        """Which runtime variant of the family serves it (the family's own head names)."""
        raise NotImplementedError

    def bundle_files(self) -> list[tuple[str, str, str | None]]:
        """(manifest field, file name, sha256 or None) of every file the bundle must hold,
        checked at load; the field names the file in error messages."""
        raise NotImplementedError

    def model_digest(self) -> str:
        """The sha256 that identifies the model's weights (metrics' model_info, /v1/models)."""
        raise NotImplementedError

    def quantization(self) -> str:
        """How the shipped weights are quantized ("none" for full precision)."""
        return "none"

    def references(self) -> list[str]:
        """Names of the other loaded bundles this one runs (loaded before it, shared with their
        own routes). Non-empty: the loader builds the runtime with the family's ``composed``
        factory and a resolver of these models, and opens no session of its own."""
        return []

    def content_schema_version(self) -> SchemaVersion:
        """The lowest version that understands this task's own section (sections aside)."""
        return 1

    @property
    def automation(self) -> AutomationSummary | None:
        """Per-class automation (validated quality, ``automate``, review band) when the family's
        calibration carries it; the service then adds ``review`` to answers (docs/review.md)."""
        return None

    def dump_exclude(self) -> dict[str, Any]:
        """Fields of the family's section left out of ``bundle.json`` (defaults older services
        would not know); see ``service.bundle.write_manifest``."""
        return {}


class ManifestBase(BundleManifest):
    """The sections every ONNX family's manifest has; a family's manifest class adds ``task``
    (the discriminator, a literal) and its own section, and overrides the hooks below."""

    if TYPE_CHECKING:  # each family declares it as a literal field (kept out of the field order)
        task: str

    has_graph: ClassVar[bool] = True

    schema_version: SchemaVersion = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    labels: list[str] = Field(min_length=1)
    onnx: OnnxInfo
    tokenizer: TokenizerInfo
    export: ExportInfo
    parity: ParityReport
    variant: VariantInfo | None = None
    selfcheck: SelfCheck | None = None
    int8_graphs: list[Int8Graph] = Field(
        default_factory=list,
        description="more INT8 graphs beside ``onnx`` (other formats, e.g. u8s8 for VNNI/AMX "
        "CPUs); the service serves the fastest one valid on its CPU. Absent before schema 6.",
    )

    @model_validator(mode="after")
    def _sections_need_their_version(self) -> ManifestBase:
        if self.variant is not None and self.schema_version < 2:
            raise ValueError("a manifest with a variant section must have schema_version 2")
        if self.selfcheck is not None and self.schema_version < 3:
            raise ValueError("a manifest with a selfcheck section must have schema_version 3")
        if self.schema_version < self.content_schema_version():
            raise ValueError(
                f"this manifest's content needs schema_version {self.content_schema_version()}"
            )
        if self.variant is not None and self.variant.needs_v4 and self.schema_version < 4:
            raise ValueError("static INT8, calibration or a refused quantization needs schema 4")
        if self._needs_v6 and self.schema_version < 6:
            raise ValueError("int8_graphs or int8_formats_refused need schema_version 6")
        files = [self.onnx.file, *(g.file for g in self.int8_graphs)] if self.int8_graphs else []
        if len(set(files)) != len(files):
            raise ValueError("int8_graphs must name files other than onnx.file and each other")
        return self

    @property
    def _needs_v6(self) -> bool:
        return bool(self.int8_graphs) or (self.variant is not None and self.variant.needs_v6)

    def bundle_files(self) -> list[tuple[str, str, str | None]]:
        return [
            ("onnx.file", self.onnx.file, self.onnx.sha256),
            ("tokenizer.file", self.tokenizer.file, self.tokenizer.sha256),
            *((f"int8_graphs[{i}].file", g.file, g.sha256) for i, g in enumerate(self.int8_graphs)),
        ]

    def model_digest(self) -> str:
        return self.onnx.sha256

    def quantization(self) -> str:
        return (self.variant and self.variant.quantization) or "none"


def schema_version_for(manifest: ManifestBase) -> SchemaVersion:
    """The lowest schema version that describes ``manifest`` (older services keep loading it)."""
    sections: SchemaVersion = 1
    if manifest._needs_v6:
        sections = 6
    elif manifest.variant is not None and manifest.variant.needs_v4:
        sections = 4
    elif manifest.selfcheck is not None:
        sections = 3
    elif manifest.variant is not None:
        sections = 2
    return max(sections, manifest.content_schema_version())


def updated_fields(manifest: ManifestBase) -> dict[str, Any]:
    """The fields of a manifest whose section was updated in place (``python -m export
    calibrate``), with the schema version its new content needs (never lowered), to re-validate."""
    version = max(manifest.schema_version, schema_version_for(manifest))
    return manifest.model_copy(update={"schema_version": version}).model_dump()
