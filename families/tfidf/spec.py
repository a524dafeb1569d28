"""The TF-IDF family's manifest (``bundle.json``): vectorizers, linear scorers, decision rule.

A TF-IDF bundle holds no ONNX graph and no pickle: the vectorizers' terms (JSON lists), their idf
weights and the linear weights (``.npy`` files, loaded with ``allow_pickle=False``) and this
manifest, which names every file with its sha256 (checked at load).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from families.classify.spec import CalibrationSummary
from service.manifest import BundleManifest, ExportInfo, ParityReport
from service.review import AutomationSummary

TfidfHead = Literal["multi-label", "single-label"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile(_Strict):
    file: str = Field(pattern=r"^[A-Za-z0-9._-]+$", description="file name inside the bundle")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class VectorizerSpec(_Strict):
    """One fitted ``TfidfVectorizer`` (see :mod:`families.tfidf.vectorizer` for the steps)."""

    name: str = Field(description="its step name in the pipeline or FeatureUnion")
    analyzer: Literal["word", "char", "char_wb"]
    ngram_range: tuple[int, int]
    lowercase: bool
    strip_accents: Literal["unicode", "ascii"] | None = None
    token_pattern: str = Field(description="Python regular expression (word analyzer)")
    stop_words: list[str] | None = None
    binary: bool = False
    sublinear_tf: bool = False
    norm: Literal["l1", "l2"] | None = "l2"
    dtype: Literal["float64", "float32"] = "float64"
    weight: float = Field(default=1.0, description="the FeatureUnion's transformer weight")
    features: int = Field(ge=1, description="vocabulary size (columns)")
    terms: DataFile = Field(description="JSON list of the terms, column order")
    idf: DataFile | None = Field(default=None, description=".npy idf weights (use_idf only)")

    @model_validator(mode="after")
    def _ngrams(self) -> VectorizerSpec:
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError("ngram_range must satisfy 1 <= low <= high")
        return self


class SigmoidCalibrator(_Strict):
    """Platt scaling: p = 1 / (1 + exp(a * score + b))."""

    kind: Literal["sigmoid"] = "sigmoid"
    a: float
    b: float


class IsotonicCalibrator(_Strict):
    """Isotonic regression: score clipped to [x[0], x[-1]], then linear interpolation."""

    kind: Literal["isotonic"] = "isotonic"
    x: list[float] = Field(min_length=1)
    y: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> IsotonicCalibrator:
        if len(self.x) != len(self.y):
            raise ValueError("isotonic x and y must have the same length")
        return self


class LogisticLink(_Strict):
    """p = 1 / (1 + exp(-score)) (logistic regression, SGD with log loss)."""

    kind: Literal["logistic"] = "logistic"


class ConstantLink(_Strict):
    """A class the training data never or always showed: p is fixed."""

    kind: Literal["constant"] = "constant"
    p: float = Field(ge=0.0, le=1.0)


Link = LogisticLink | SigmoidCalibrator | IsotonicCalibrator | ConstantLink


class Member(_Strict):
    """One probability model over the linear scores; the bundle's probabilities are the mean of
    its members' (``CalibratedClassifierCV`` has one member per fold, the rest one).

    ``columns``: the scorer columns this member reads. ``combine``:
    - ``softmax``: softmax over its columns (multinomial logistic regression, K >= 3);
    - ``binary``: one column, p = link(score), probabilities [1 - p, p];
    - ``normalize``: p_k = link_k(column_k), divided by their sum (uniform when the sum is 0);
    - ``independent``: p_k = link_k(column_k), as is (multi-label one-vs-rest).
    ``links``: per output class (``binary``: one), how a score becomes a probability.
    """

    columns: list[int] = Field(min_length=1)
    combine: Literal["softmax", "binary", "normalize", "independent"]
    links: list[Link] = Field(default_factory=list)
    on_zero_sum: Literal["uniform", "zeros"] = Field(
        default="uniform",
        description="normalize: a row summing to 0 becomes uniform (SGD, calibrated) or stays 0 "
        "(OneVsRestClassifier)",
    )
    clip_above_one: bool = Field(
        default=False, description="CalibratedClassifierCV: values in (1, 1 + 1e-5] become 1"
    )


class LinearSpec(_Strict):
    """scores = features @ weights + bias; ``weights`` is a [features, columns] .npy file."""

    weights: DataFile
    bias: DataFile
    columns: int = Field(ge=1)
    members: list[Member] = Field(min_length=1)


class ParityDocument(_Strict):
    index: int
    max_abs_diff: float


class TfidfSpec(_Strict):
    head: TfidfHead
    estimator: str = Field(description="the scikit-learn classifier exported, e.g. LogisticRegr..")
    vectorizers: list[VectorizerSpec] = Field(min_length=1)
    linear: LinearSpec
    thresholds: list[float] | None = Field(
        default=None, description="multi-label: per-class decision thresholds, label order"
    )
    abstain_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="single-label: answer no class when the top probability is below this",
    )
    max_chars: int | None = Field(
        default=None, ge=1, description="longest document accepted (None: the service's limit)"
    )
    calibration: CalibrationSummary | None = Field(
        default=None,
        description="multi-label: where the thresholds came from and, with its automation "
        "section (schema 5), the per-class automation (``python -m export calibrate``)",
    )

    @model_validator(mode="after")
    def _head_is_consistent(self) -> TfidfSpec:
        if self.head == "multi-label":
            if self.thresholds is None:
                raise ValueError("a multi-label head needs thresholds")
            if any(not 0.0 <= t <= 1.0 for t in self.thresholds):
                raise ValueError("thresholds must lie in [0, 1]")
            if self.abstain_threshold is not None:
                raise ValueError("abstain_threshold applies to single-label heads only")
        elif self.thresholds is not None or self.calibration is not None:
            raise ValueError("a single-label head has no per-class thresholds or calibration")
        for member in self.linear.members:
            if any(not 0 <= c < self.linear.columns for c in member.columns):
                raise ValueError(f"member columns must lie in [0, {self.linear.columns})")
        return self


class TfidfManifest(BundleManifest):
    """``bundle.json`` of a TF-IDF classifier; served by ``/v1/classify``. No ONNX graph: a
    :class:`~service.manifest.BundleManifest` whose files are the data files below."""

    # 4; 5 when the calibration carries per-class automation (older services refuse it then)
    schema_version: Literal[4, 5] = 4
    task: Literal["tfidf"] = "tfidf"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    labels: list[str] = Field(min_length=2)
    tfidf: TfidfSpec
    export: ExportInfo
    parity: ParityReport

    @property
    def head(self) -> str:
        return self.tfidf.head

    def bundle_files(self) -> list[tuple[str, str, str | None]]:
        return [("tfidf data file", f.file, f.sha256) for f in self.data_files()]

    def model_digest(self) -> str:
        return self.tfidf.linear.weights.sha256

    def data_files(self) -> list[DataFile]:
        files = [self.tfidf.linear.weights, self.tfidf.linear.bias]
        for v in self.tfidf.vectorizers:
            files.append(v.terms)
            if v.idf is not None:
                files.append(v.idf)
        return files

    @property
    def automation(self) -> AutomationSummary | None:
        calibration = self.tfidf.calibration
        return calibration.automation if calibration is not None else None

    def dump_exclude(self) -> dict[str, Any]:
        """An uncalibrated bundle's manifest stays what schema-4 services read."""
        return {"tfidf": {"calibration"}} if self.tfidf.calibration is None else {}

    def with_decisions(self, **fields: Any) -> TfidfManifest:
        """A copy with new thresholds and calibration summary (``python -m export calibrate``),
        re-validated, at the schema version its content needs. The classifier calibration's
        ``global_threshold`` has no place here (the summary records its figures)."""
        fields.pop("global_threshold", None)
        spec = self.tfidf.model_copy(update=fields)
        version = 5 if spec.calibration is not None and spec.calibration.automation else 4
        updated = self.model_copy(update={"tfidf": spec, "schema_version": version})
        return TfidfManifest.model_validate(updated.model_dump())

    @model_validator(mode="after")
    def _one_threshold_per_label(self) -> TfidfManifest:
        thresholds = self.tfidf.thresholds
        if thresholds is not None and len(thresholds) != len(self.labels):
            raise ValueError(f"need one threshold per label ({len(self.labels)})")
        automation = self.automation
        if automation is not None:
            if self.schema_version < 5:
                raise ValueError("per-class automation needs schema_version 5")
            if [c.label for c in automation.classes] != self.labels:
                raise ValueError("calibration.automation must list every label, in label order")
        return self
