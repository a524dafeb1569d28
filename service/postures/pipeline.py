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
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs, length_sorted_batches
from service.text.tokenizer import TextTokenizer
from service.text.windows import plan_windows

FloatArray = NDArray[np.float64]
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


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -x))
    return out


class PosturePipeline:
    """Everything between a list of documents and their postures, for one posture bundle."""

    def __init__(
        self,
        manifest: PostureManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 8,
        max_batch_tokens: int = 16_384,
        aggregation: Aggregation | None = None,
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.aggregation: Aggregation = aggregation or manifest.postures.aggregation
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)
        self.thresholds = np.asarray(manifest.postures.thresholds, dtype=np.float64)

    def probabilities(self, texts: list[str]) -> DocumentProbabilities:
        """Aggregated per-class probabilities of each document."""
        started = time.perf_counter()
        encoded = self.tokenizer.encode_batch(texts)
        tokenized = time.perf_counter()
        rows, owner = [], []
        for doc, e in enumerate(encoded):
            for w in plan_windows(len(e), self.capacity, self.stride):
                rows.append(e.ids[w.start : w.end])
                owner.append(doc)
        window_probs = np.empty((len(rows), len(self.manifest.labels)))
        batches = length_sorted_batches(
            [len(r) + self.tokenizer.num_special_tokens for r in rows],
            self.max_batch_size,
            self.max_batch_tokens,
        )
        for batch in batches:
            inputs = build_inputs(
                [rows[i] for i in batch],
                self.tokenizer.prefix_ids,
                self.tokenizer.suffix_ids,
                self.manifest.tokenizer.pad_token_id,
            )
            window_probs[batch] = sigmoid(self.session.run(inputs).astype(np.float64))
        inferred = time.perf_counter()
        owners = np.asarray(owner)
        combine = np.max if self.aggregation == "max" else np.mean
        documents = np.stack(
            [combine(window_probs[owners == d], axis=0) for d in range(len(texts))]
        )
        return DocumentProbabilities(
            probabilities=documents,
            windows=np.bincount(owners, minlength=len(texts)).tolist(),
            tokens=sum(len(e) for e in encoded),
            timings={
                "tokenize": tokenized - started,
                "inference": inferred - tokenized,
                "decode": time.perf_counter() - inferred,
            },
        )

    def predict(self, texts: list[str], top_k: int | None = None) -> PosturePrediction:
        result = self.probabilities(texts)
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
