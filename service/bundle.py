"""The bundle: a directory that fully describes one exported model, and its versioned manifest.

``bundle.json`` is written by the export stage and validated here when the service loads it, so a
bundle from an incompatible exporter, or one whose ONNX file was changed, fails loudly at start-up.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from service.runtime.cpu_features import INT8_DOT_PRODUCT, CpuInfo

# Newest understood. Bundles are written with the lowest version that describes them: 1 for a
# plain fp32 BIO BERT-CRF or posture bundle, 2 with a graph variant, 3 with a self-check sample
# (every bundle exported now) or an NER head, tag scheme or layout beyond the first round's, 4 for
# a classifier bundle (task "classify": any encoder, multi- or single-label) or a variant with
# static INT8, its calibration or a refused quantization. Older services then refuse them by
# version.
SCHEMA_VERSION = 4
SchemaVersion = Literal[1, 2, 3, 4]
MANIFEST_FILE = "bundle.json"


class BundleError(RuntimeError):
    """A bundle directory is missing, malformed or does not match its manifest."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnnxInfo(_Strict):
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    opset: int
    inputs: list[str] = Field(description="graph input names, e.g. input_ids, attention_mask")
    output: str = Field(description="name of the output the service reads")


class TokenizerInfo(_Strict):
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


class CrfScores(_Strict):
    start: list[float]
    end: list[float]
    transitions: list[list[float]]


class NerSpec(_Strict):
    tag_scheme: Literal["BIO", "BIOES", "BILOU"] = "BIO"
    constrain_transitions: bool = Field(
        default=True,
        description="forbid the scheme's invalid moves (O→I-X, B-X→I-Y, start→I-X; with BIOES "
        "also E/S/O→I/E, B/I-X→anything but I-X/E-X, B/I at the end) when decoding",
    )
    head: Literal["crf", "softmax"] = Field(
        default="crf",
        description="crf: the graph outputs emissions, decoded with the CRF scores below; "
        "softmax: the graph outputs log-probabilities, decoded with zero transitions",
    )
    crf: CrfScores | None = None
    subtokens: Literal["first", "all"] = Field(
        default="first",
        description="how training placed labels (first sub-token, or every sub-token); the word's "
        "tag is read at its first sub-token either way",
    )
    crf_positions: Literal["words", "cls+words"] = Field(
        default="words",
        description="positions the CRF ran over in training: the words, or [CLS] (tag fixed to O) "
        "followed by the words",
    )

    @model_validator(mode="after")
    def _head_has_its_scores(self) -> NerSpec:
        if (self.head == "crf") != (self.crf is not None):
            raise ValueError("a crf head needs crf scores, a softmax head has none")
        if self.crf_positions != "words" and self.head != "crf":
            raise ValueError("crf_positions applies to crf heads only")
        return self

    @property
    def needs_v3(self) -> bool:
        """Whether anything here goes beyond what schema 1/2 services understand."""
        return any(getattr(self, k) != v for k, v in _V1_NER_DEFAULTS.items())


_V1_NER_DEFAULTS = {
    "tag_scheme": "BIO",
    "head": "crf",
    "subtokens": "first",
    "crf_positions": "words",
}


class ExportInfo(_Strict):
    created_at: str
    source: str
    duration_s: float
    versions: dict[str, str]


class ParityReport(_Strict):
    """How closely the ONNX graph reproduces the PyTorch model (filled by the export gate)."""

    atol: float
    max_abs_diff: float
    cases: int
    tag_agreement: float | None = None
    details: list[dict[str, float | int | str]] = []


class CalibrationInfo(_Strict):
    """Static INT8's activation ranges: from which texts and how they were cut."""

    method: Literal["minmax", "percentile", "entropy"]
    percentile: float | None = Field(default=None, description="percentile method only")
    texts: int = Field(ge=1, description="calibration texts, each run alone (no padding)")
    tokens: int = Field(ge=1, description="real tokens they hold")
    source: str = Field(description="where the texts came from")


class VariantInfo(_Strict):
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
    int8_format: Literal["u8s8-reduced", "u8u8", "u8s8"] | None = Field(
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


class SelfCheck(_Strict):
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


class ManifestBase(_Strict):
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
        return self

    def content_schema_version(self) -> SchemaVersion:
        """The lowest version that understands this task's own section (sections aside)."""
        return 1


class NerManifest(ManifestBase):
    task: Literal["ner"] = "ner"
    ner: NerSpec

    @property
    def head(self) -> str:
        return self.ner.head

    def content_schema_version(self) -> SchemaVersion:
        # an NER head, tag scheme or layout beyond BIO BERT-CRF needs schema 3
        return 3 if self.ner.needs_v3 else 1

    @model_validator(mode="after")
    def _crf_matches_labels(self) -> NerManifest:
        k = len(self.labels)
        crf = self.ner.crf
        if crf is None:
            return self
        if len(crf.start) != k or len(crf.end) != k or any(len(r) != k for r in crf.transitions):
            raise ValueError(f"CRF scores must be sized to the {k} labels")
        if len(crf.transitions) != k:
            raise ValueError(f"CRF transitions must be {k}x{k}")
        return self


class CalibrationOption(_Strict):
    """One candidate threshold rule: in-sample and out-of-fold (cross-validated) figures."""

    validation_micro_f1: float
    validation_macro_f1: float
    oof_micro_f1: float
    oof_micro_f1_low: float = Field(description="bootstrap 95% interval, low end")
    oof_micro_f1_high: float
    oof_macro_f1: float


CalibrationMethod = Literal["at_0.5", "global", "per_class", "shrunk"]


class CalibrationSummary(_Strict):
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


class AbstainSummary(_Strict):
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


class PostureSpec(_Strict):
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


ClassifierHead = Literal["multi-label", "single-label"]
PROBLEM_TYPES: dict[str, str] = {
    "multi-label": "multi_label_classification",
    "single-label": "single_label_classification",
}


class ClassifySpec(_Strict):
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


class PostureManifest(ManifestBase):
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

    def with_decisions(self, **fields: Any) -> PostureManifest:
        """A copy with the decision fields (thresholds, calibration) replaced, re-validated."""
        updated = self.model_copy(update={"postures": self.postures.model_copy(update=fields)})
        return PostureManifest.model_validate(updated.model_dump())

    @model_validator(mode="after")
    def _one_threshold_per_label(self) -> PostureManifest:
        if len(self.postures.thresholds) != len(self.labels):
            raise ValueError(f"need one threshold per label ({len(self.labels)})")
        return self


class ClassifyManifest(ManifestBase):
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
        return 4

    def with_decisions(self, **fields: Any) -> ClassifyManifest:
        updated = self.model_copy(update={"classify": self.classify.model_copy(update=fields)})
        return ClassifyManifest.model_validate(updated.model_dump())

    @model_validator(mode="after")
    def _one_threshold_per_label(self) -> ClassifyManifest:
        thresholds = self.classify.thresholds
        if thresholds is not None and len(thresholds) != len(self.labels):
            raise ValueError(f"need one threshold per label ({len(self.labels)})")
        if self.classify.head == "single-label" and len(self.labels) < 2:
            raise ValueError("a single-label head needs at least two labels")
        return self


# The manifests served by the classifier runtime (posture bundles are multi-label classifiers).
ClassifierManifest = PostureManifest | ClassifyManifest
AnyManifest = NerManifest | PostureManifest | ClassifyManifest
Manifest = Annotated[AnyManifest, Field(discriminator="task")]
_manifest_adapter: TypeAdapter[AnyManifest] = TypeAdapter(Manifest)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: Path) -> AnyManifest:
    """Parse and validate ``bundle.json`` (no integrity check of the files)."""
    path = bundle_dir / MANIFEST_FILE
    try:
        return _manifest_adapter.validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise BundleError(f"{bundle_dir}: no {MANIFEST_FILE}; is this an exported bundle?") from exc
    except ValidationError as exc:
        raise BundleError(f"{path}: invalid manifest:\n{exc}") from exc


def bundle_file(bundle_dir: Path, name: str, field: str) -> Path:
    """The file a manifest names in ``field``, inside ``bundle_dir``, or BundleError.

    The rule (docs/reliability.md): a plain relative name (sub-directories allowed), no ``..``
    part, not absolute, and the resolved path (symlinks followed) inside the bundle directory.
    A refused path is named as the manifest spells it; nothing outside the bundle is read.
    """
    pure = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name:
        problem = "is not a plain relative file name"
    elif pure.is_absolute() or Path(name).is_absolute():
        problem = "is an absolute path"
    elif ".." in pure.parts:
        problem = "has a '..' part"
    else:
        root = bundle_dir.resolve()
        resolved = (root / name).resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            problem = "resolves outside the bundle directory (a symlink)"
        else:
            return bundle_dir / name
    raise BundleError(
        f"{bundle_dir}: {field} {name!r} {problem}; files a manifest names must be plain "
        "relative names inside the bundle directory"
    )


def verify_bundle(bundle_dir: Path) -> AnyManifest:
    """Validate the manifest, check that the files it names are inside the bundle directory and
    exist, and that their sha256 match."""
    manifest = read_manifest(bundle_dir)
    named = [("onnx.file", manifest.onnx.file), ("tokenizer.file", manifest.tokenizer.file)]
    paths = {field: bundle_file(bundle_dir, name, field) for field, name in named}
    for field, name in named:
        if not paths[field].is_file():
            raise BundleError(f"{bundle_dir}: {name} ({field}) is missing")
    expected = [(paths["onnx.file"], manifest.onnx.sha256)]
    if manifest.tokenizer.sha256 is not None:
        expected.append((paths["tokenizer.file"], manifest.tokenizer.sha256))
    for path, digest in expected:
        actual = sha256_of(path)
        if actual != digest:
            raise BundleError(
                f"{path}: sha256 {actual} does not match the manifest's {digest}; "
                "the file is corrupt, truncated or was replaced"
            )
    return manifest


def schema_version_for(manifest: ManifestBase) -> SchemaVersion:
    """The lowest schema version that describes ``manifest`` (older services keep loading it)."""
    if manifest.variant is not None and manifest.variant.needs_v4:
        return 4
    sections: SchemaVersion = 1
    if manifest.selfcheck is not None:
        sections = 3
    elif manifest.variant is not None:
        sections = 2
    return max(sections, manifest.content_schema_version())


def write_manifest(manifest: ManifestBase, bundle_dir: Path) -> None:
    """Write atomically (temp file + rename): a reader never sees a half-written manifest."""
    target = bundle_dir / MANIFEST_FILE
    partial = target.with_suffix(".json.partial")
    # Sections a bundle does not have are left out rather than written as null, and the NER
    # defaults of the first round are left out where nothing beyond them is used.
    exclude: dict[str, Any] = {
        k: True for k in ("variant", "selfcheck") if getattr(manifest, k) is None
    }
    if isinstance(manifest, NerManifest) and not manifest.ner.needs_v3:
        exclude["ner"] = set(_V1_NER_DEFAULTS) - {"tag_scheme"}
    partial.write_text(manifest.model_dump_json(indent=2, exclude=exclude or None) + "\n")
    os.replace(partial, target)
