"""Postures from text: tokenize → overlapping windows (each with its own CLS) → ONNX → sigmoid →
aggregate window probabilities per document (max or mean) → per-class thresholds.

Documents longer than the model's window are never truncated. Calibration
(``python -m export calibrate``) calls :meth:`PosturePipeline.probabilities`, so thresholds are
tuned on exactly the probabilities the service computes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from service.bundle import PostureManifest
from service.runtime.batch_loop import run_rows
from service.runtime.batcher import plan_slices
from service.runtime.family import AnyManifest, RequestOptions
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.tokenizer import TextTokenizer
from service.text.windows import plan_windows

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Aggregation = Literal["max", "mean"]


@dataclass(frozen=True)
class PostureScore:
    label: str
    probability: float
    threshold: float


@dataclass
class DocumentProbabilities:
    probabilities: FloatArray  # [documents, classes]
    windows: list[int]
    tokens: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class PosturePrediction:
    postures: list[list[PostureScore]]  # per document: predicted postures, most probable first
    probabilities: FloatArray
    windows: list[int]
    tokens: int
    timings: dict[str, float]

    @property
    def total_windows(self) -> int:
        return sum(self.windows)


@dataclass
class PostureInputs:
    """One request after tokenization (windows cut), before any ONNX call."""

    texts: list[str]
    top_k: int | None
    rows: list[IntArray]  # content token ids of every window
    owner: list[int]  # the document (index in texts) of each window
    tokens: int
    special_tokens: int
    tokenize_seconds: float

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        """Padded row length of this request's longest window, special tokens included."""
        return max((len(r) for r in self.rows), default=0) + self.special_tokens

    def split(self, max_windows: int, max_tokens: int) -> list[PostureSlice]:
        """Consecutive windows in groups within the budget (the batcher runs one per turn)."""
        widths = [len(r) + self.special_tokens for r in self.rows]
        return [PostureSlice(self, part) for part in plan_slices(widths, max_windows, max_tokens)]


@dataclass
class PostureSlice:
    """Some windows of one request: their probabilities, merged by ``PosturePipeline.merge``."""

    parent: PostureInputs
    rows: range  # indices into parent.rows

    @property
    def num_texts(self) -> int:
        return len({self.parent.owner[i] for i in self.rows})

    @property
    def num_windows(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return max(len(self.parent.rows[i]) for i in self.rows) + self.parent.special_tokens

    @property
    def tokens(self) -> int:
        return sum(len(self.parent.rows[i]) for i in self.rows)

    def split(self, max_windows: int, max_tokens: int) -> list[PostureSlice]:
        return [self]


@dataclass
class PostureSliceScores:
    probabilities: FloatArray  # [windows of the slice, classes]
    seconds: float


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -x))
    return out


class PosturePipeline:
    """Everything between a list of documents and their postures, for one posture bundle."""

    allow_blank = False  # a blank document has nothing to classify: 422

    def __init__(
        self,
        manifest: PostureManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 8,
        max_batch_tokens: int = 16_384,
        aggregation: Aggregation | None = None,
        max_chars: int = 100_000,
    ) -> None:
        self.manifest = manifest
        self.max_chars = max_chars
        self.session = session
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.aggregation: Aggregation = aggregation or manifest.postures.aggregation
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)
        self.thresholds = np.asarray(manifest.postures.thresholds, dtype=np.float64)

    @classmethod
    def from_bundle(
        cls, manifest: AnyManifest, bundle_dir: Path, session: InferenceSession, settings: Settings
    ) -> PosturePipeline:
        if not isinstance(manifest, PostureManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not postures")
        return cls(
            manifest,
            bundle_dir,
            session,
            settings.max_batch_size,
            settings.max_batch_tokens,
            settings.posture_aggregation,
            settings.max_document_chars,
        )

    def describe(self) -> dict[str, object]:
        spec = self.manifest.postures
        return {
            "thresholds": dict(zip(self.manifest.labels, spec.thresholds, strict=True)),
            "aggregation": spec.aggregation,
            "calibration": spec.calibration.model_dump() if spec.calibration else None,
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> PostureInputs:
        """Tokenize and cut windows: what the batcher needs to know a request's cost."""
        started = time.perf_counter()
        encoded = self.tokenizer.encode_batch(texts)
        rows: list[IntArray] = []
        owner: list[int] = []
        for doc, e in enumerate(encoded):
            for w in plan_windows(len(e), self.capacity, self.stride):
                rows.append(e.ids[w.start : w.end])
                owner.append(doc)
        return PostureInputs(
            texts=texts,
            top_k=options.top_k if options else None,
            rows=rows,
            owner=owner,
            tokens=sum(len(e) for e in encoded),
            special_tokens=self.tokenizer.num_special_tokens,
            tokenize_seconds=time.perf_counter() - started,
        )

    def probabilities(self, texts: list[str]) -> DocumentProbabilities:
        """Aggregated per-class probabilities of each document."""
        return self._probabilities([self.prepare(texts)])[0]

    def run_slice(self, part: PostureSlice) -> PostureSliceScores:
        """Window probabilities of one slice (aggregation waits for ``merge``)."""
        started = time.perf_counter()
        probs = self._window_probabilities([part.parent.rows[i] for i in part.rows])
        return PostureSliceScores(probs, time.perf_counter() - started)

    def merge(self, item: PostureInputs, parts: list[PostureSliceScores]) -> PosturePrediction:
        """The request's postures from its slices' window probabilities, in window order."""
        window_probs = np.concatenate([part.probabilities for part in parts])
        started = time.perf_counter()
        combine = np.max if self.aggregation == "max" else np.mean
        owners = np.asarray(item.owner, dtype=np.int64)
        documents = np.stack(
            [combine(window_probs[owners == d], axis=0) for d in range(len(item.texts))]
        )
        result = DocumentProbabilities(
            probabilities=documents,
            windows=np.bincount(owners, minlength=len(item.texts)).tolist(),
            tokens=item.tokens,
            timings={
                "tokenize": item.tokenize_seconds,
                "inference": sum(part.seconds for part in parts),
                "decode": time.perf_counter() - started,
            },
        )
        return self._select(result, item.top_k)

    def _window_probabilities(self, rows: list[IntArray]) -> FloatArray:
        """Sigmoid probabilities of every window, in length-sorted ONNX calls."""
        if not rows:
            return np.empty((0, len(self.thresholds)))
        logits = run_rows(
            self.session,
            rows,
            self.tokenizer,
            self.manifest.tokenizer.pad_token_id,
            self.max_batch_size,
            self.max_batch_tokens,
        )
        return sigmoid(np.stack(logits))

    def _probabilities(self, items: list[PostureInputs]) -> list[DocumentProbabilities]:
        """Windows of every request in shared ONNX calls, aggregated per document of each."""
        rows = [r for item in items for r in item.rows]
        started = time.perf_counter()
        window_probs = self._window_probabilities(rows)
        inferred = time.perf_counter()
        combine = np.max if self.aggregation == "max" else np.mean
        results, offset = [], 0
        for item in items:
            owners = np.asarray(item.owner, dtype=np.int64)
            mine = window_probs[offset : offset + len(item.rows)]
            offset += len(item.rows)
            documents = np.stack(
                [combine(mine[owners == d], axis=0) for d in range(len(item.texts))]
            )
            results.append(
                DocumentProbabilities(
                    probabilities=documents,
                    windows=np.bincount(owners, minlength=len(item.texts)).tolist(),
                    tokens=item.tokens,
                    timings={
                        "tokenize": item.tokenize_seconds,
                        "inference": inferred - started,
                        "decode": time.perf_counter() - inferred,
                    },
                )
            )
        return results

    def predict(self, texts: list[str], top_k: int | None = None) -> PosturePrediction:
        return self.run_prepared([self.prepare(texts, RequestOptions(top_k=top_k))])[0]

    def run_prepared(self, items: list[PostureInputs]) -> list[PosturePrediction]:
        """Several requests in one pass; each keeps its own ``top_k``."""
        return [
            self._select(result, item.top_k)
            for item, result in zip(items, self._probabilities(items), strict=True)
        ]

    def _select(self, result: DocumentProbabilities, top_k: int | None) -> PosturePrediction:
        """Postures over their own thresholds, most probable first, at most ``top_k``."""
        labels = self.manifest.labels
        postures = []
        for probs in result.probabilities:
            chosen = np.flatnonzero(probs >= self.thresholds)
            chosen = chosen[np.argsort(-probs[chosen], kind="stable")][:top_k]
            postures.append(
                [
                    PostureScore(labels[c], float(probs[c]), float(self.thresholds[c]))
                    for c in chosen
                ]
            )
        return PosturePrediction(
            postures, result.probabilities, result.windows, result.tokens, result.timings
        )
