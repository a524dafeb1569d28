"""The serving runtime of TF-IDF bundles: texts → tf-idf rows → linear scores → probabilities →
decisions, in numpy (no scikit-learn, no ONNX graph).

Vectorizing happens in ``prepare`` (like tokenizing for the transformer families); the batcher's
worker runs the linear layer of several requests at once. Each document is read whole, so a
request's "windows" are its documents, one each. Decisions are the classifier family's: multi-label
at or above each class's threshold, single-label the argmax unless below the abstain threshold.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from families.classify.runtime import ClassPrediction, ClassScore
from families.tfidf.linear import linear_scores, probabilities
from families.tfidf.spec import DataFile, TfidfManifest
from families.tfidf.vectorizer import FeatureSpace, SparseRows, TfidfTransform
from service.manifest import BundleError, BundleManifest, sha256_of
from service.review import Review, review_with
from service.runtime.batcher import plan_slices
from service.runtime.family import RequestOptions
from service.runtime.session import InferenceSession
from service.settings import Settings

FloatArray = NDArray[np.float64]


class NumpySession:
    """Stands where the ONNX families hold their session: there is no graph to run."""

    @property
    def input_names(self) -> list[str]:
        return []

    @property
    def provider(self) -> str:
        return "numpy"

    def run(self, inputs: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        raise RuntimeError("a TF-IDF bundle has no ONNX graph")


def _checked(bundle_dir: Path, data: DataFile) -> Path:
    path = bundle_dir / data.file
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: {data.file} is missing")
    actual = sha256_of(path)
    if actual != data.sha256:
        raise BundleError(
            f"{path}: sha256 {actual} does not match the manifest's {data.sha256}; the file is "
            "corrupt, truncated or was replaced"
        )
    return path


def _array(bundle_dir: Path, data: DataFile) -> FloatArray:
    out: FloatArray = np.load(_checked(bundle_dir, data), allow_pickle=False).astype(np.float64)
    return out


def numpy_session(manifest: BundleManifest, bundle_dir: Path, settings: Settings) -> NumpySession:
    """The family's session factory (``ServingFamily.session``): no graph to open."""
    return NumpySession()


@dataclass
class TfidfModel:
    """A loaded TF-IDF bundle: ``probabilities(texts)`` is what ``predict_proba`` gave at export."""

    manifest: TfidfManifest
    features: FeatureSpace
    weights: FloatArray  # [features, columns]
    bias: FloatArray  # [columns]

    @classmethod
    def load(cls, manifest: TfidfManifest, bundle_dir: Path) -> TfidfModel:
        spec = manifest.tfidf
        parts = []
        for v in spec.vectorizers:
            terms = json.loads(_checked(bundle_dir, v.terms).read_text(encoding="utf-8"))
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise BundleError(f"{bundle_dir / v.terms.file}: not a JSON list of strings")
            idf = None if v.idf is None else _array(bundle_dir, v.idf)
            try:
                parts.append(TfidfTransform(v, terms, idf))
            except ValueError as exc:
                raise BundleError(f"{bundle_dir}: vectorizer {v.name!r}: {exc}") from exc
        features = FeatureSpace(parts)
        weights = _array(bundle_dir, spec.linear.weights)
        bias = _array(bundle_dir, spec.linear.bias)
        if weights.shape != (features.width, spec.linear.columns) or bias.shape != (
            spec.linear.columns,
        ):
            raise BundleError(
                f"{bundle_dir}: linear weights {weights.shape} / bias {bias.shape} do not match "
                f"{features.width} features x {spec.linear.columns} columns"
            )
        return cls(manifest, features, weights, bias)

    def vectorize(self, texts: list[str]) -> SparseRows:
        return self.features.transform(texts)

    def probabilities_of(self, rows: SparseRows) -> FloatArray:
        scores = linear_scores(rows, self.weights, self.bias)
        return probabilities(self.manifest.tfidf.linear.members, scores)

    def probabilities(self, texts: list[str]) -> FloatArray:
        return self.probabilities_of(self.vectorize(texts))


@dataclass
class TfidfInputs:
    """One request after vectorizing: each document is one "window" of its non-zero features."""

    texts: list[str]
    top_k: int | None
    rows: SparseRows
    vectorize_seconds: float

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return len(self.texts)

    @property
    def tokens(self) -> int:
        return int(self.rows.indptr[-1])

    @property
    def width(self) -> int:
        sizes = np.diff(self.rows.indptr)
        return int(sizes.max()) if sizes.size else 0

    def split(self, max_windows: int, max_tokens: int) -> list[TfidfSlice]:
        widths = [max(1, int(w)) for w in np.diff(self.rows.indptr)]
        return [TfidfSlice(self, part) for part in plan_slices(widths, max_windows, max_tokens)]


@dataclass
class TfidfSlice:
    parent: TfidfInputs
    documents: range

    @property
    def num_texts(self) -> int:
        return len(self.documents)

    @property
    def num_windows(self) -> int:
        return len(self.documents)

    @property
    def width(self) -> int:
        p = self.parent.rows.indptr
        return max(int(p[d + 1] - p[d]) for d in self.documents)

    @property
    def tokens(self) -> int:
        p = self.parent.rows.indptr
        return int(p[self.documents.stop] - p[self.documents.start])

    def split(self, max_windows: int, max_tokens: int) -> list[TfidfSlice]:
        return [self]


def _take(rows: SparseRows, documents: range) -> SparseRows:
    start, stop = int(rows.indptr[documents.start]), int(rows.indptr[documents.stop])
    return SparseRows(
        rows.indptr[documents.start : documents.stop + 1] - start,
        rows.indices[start:stop],
        rows.data[start:stop],
        rows.width,
    )


def _stack(parts: list[SparseRows]) -> SparseRows:
    offsets = np.cumsum([0] + [int(p.indptr[-1]) for p in parts])
    indptr = np.concatenate(
        [[0]] + [p.indptr[1:] + off for p, off in zip(parts, offsets, strict=False)]
    ).astype(np.int64)
    return SparseRows(
        indptr,
        np.concatenate([p.indices for p in parts]),
        np.concatenate([p.data for p in parts]),
        parts[0].width,
    )


@dataclass
class TfidfSliceScores:
    probabilities: FloatArray
    seconds: float


class TfidfRuntime:
    """The serving runtime of one TF-IDF bundle (``service.runtime.family.Runtime``)."""

    allow_blank = False  # a blank text has nothing to classify: 422

    def __init__(
        self, model: TfidfModel, max_chars: int, session: InferenceSession | None = None
    ) -> None:
        self.model = model
        self.manifest = model.manifest
        self.spec = model.manifest.tfidf
        self.session: InferenceSession = session or NumpySession()
        self.max_chars = min(max_chars, self.spec.max_chars or max_chars)
        labels = self.manifest.labels
        self.thresholds = np.asarray(self.spec.thresholds or [0.0] * len(labels))
        self.abstain = self.spec.abstain_threshold
        self.automation = model.manifest.automation

    @classmethod
    def from_bundle(
        cls,
        manifest: BundleManifest,
        bundle_dir: Path,
        session: InferenceSession,
        settings: Settings,
    ) -> TfidfRuntime:
        if not isinstance(manifest, TfidfManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not tfidf")
        return cls(TfidfModel.load(manifest, bundle_dir), settings.max_document_chars, session)

    def describe(self) -> dict[str, object]:
        spec = self.spec
        return {
            "head": spec.head,
            "estimator": spec.estimator,
            "vectorizers": [
                {"name": v.name, "analyzer": v.analyzer, "ngram_range": list(v.ngram_range)}
                for v in spec.vectorizers
            ],
            "features": self.model.features.width,
            "thresholds": None
            if spec.thresholds is None
            else dict(zip(self.manifest.labels, spec.thresholds, strict=True)),
            "abstain_threshold": spec.abstain_threshold,
            "calibration": spec.calibration.model_dump(exclude={"automation"})
            if spec.calibration
            else None,
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> TfidfInputs:
        started = time.perf_counter()
        rows = self.model.vectorize(texts)
        return TfidfInputs(
            texts, options.top_k if options else None, rows, time.perf_counter() - started
        )

    def run_prepared(self, items: list[TfidfInputs]) -> list[ClassPrediction]:
        started = time.perf_counter()
        probs = self.model.probabilities_of(_stack([item.rows for item in items]))
        seconds = time.perf_counter() - started
        results, offset = [], 0
        for item in items:
            mine = probs[offset : offset + item.num_texts]
            offset += item.num_texts
            results.append(self._select(item, mine, seconds))
        return results

    def run_slice(self, part: TfidfSlice) -> TfidfSliceScores:
        started = time.perf_counter()
        probs = self.model.probabilities_of(_take(part.parent.rows, part.documents))
        return TfidfSliceScores(probs, time.perf_counter() - started)

    def merge(self, item: TfidfInputs, parts: list[TfidfSliceScores]) -> ClassPrediction:
        probs = np.concatenate([p.probabilities for p in parts])
        return self._select(item, probs, sum(p.seconds for p in parts))

    def predict(self, texts: list[str], top_k: int | None = None) -> ClassPrediction:
        return self.run_prepared([self.prepare(texts, RequestOptions(top_k=top_k))])[0]

    def decide(self, probs: FloatArray) -> list[int]:
        """Predicted class indices of one text, most probable first."""
        if self.spec.head == "single-label":
            top = int(np.argmax(probs))
            return [] if self.abstain is not None and probs[top] < self.abstain else [top]
        chosen = np.flatnonzero(probs >= self.thresholds)
        return [int(c) for c in chosen[np.argsort(-probs[chosen], kind="stable")]]

    def _select(self, item: TfidfInputs, probs: FloatArray, seconds: float) -> ClassPrediction:
        started = time.perf_counter()
        labels = self.manifest.labels
        threshold = (
            np.full(len(labels), self.abstain or 0.0)
            if self.spec.head == "single-label"
            else self.thresholds
        )
        chosen = [
            [
                ClassScore(labels[c], float(p[c]), float(threshold[c]))
                for c in self.decide(p)[: item.top_k]
            ]
            for p in probs
        ]
        timings = {
            "tokenize": item.vectorize_seconds,
            "inference": seconds,
            "decode": time.perf_counter() - started,
        }
        return ClassPrediction(
            chosen,
            probs,
            [1] * item.num_texts,
            item.tokens,
            timings,
            # per text: its non-zero features (the cost counted as tokens); a document is read
            # whole (one "window"), never truncated
            text_tokens=[int(n) for n in np.diff(item.rows.indptr)],
            truncated=[False] * item.num_texts,
            reviews=self._review(probs),
        )

    def _review(self, probs: FloatArray) -> list[Review] | None:
        """Per text, who decides (docs/review.md); None when the bundle has no automation."""
        if self.automation is None:
            return None
        return review_with(self.automation, probs, self.manifest.labels, self.thresholds)
