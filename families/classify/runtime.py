"""Classes from text, for every sequence-classifier bundle (``classify`` multi- or single-label, and
``postures``, which is multi-label): tokenize → overlapping windows (each with its own CLS) → ONNX →
probabilities per window → aggregated per text → decisions.

- multi-label: sigmoid per class; windows combined by ``max`` (a class mentioned anywhere counts)
  or ``mean``; a class is predicted at or above its own threshold.
- single-label: softmax over the classes; windows combined by the **mean** of their probability
  vectors (a distribution again); the argmax is predicted, or nothing when the bundle has an
  abstain threshold and the top probability is below it.

Texts longer than the model's window are never truncated. Calibration (``python -m export
calibrate``) calls :meth:`ClassifierPipeline.probabilities`, so thresholds are tuned on exactly the
probabilities the service computes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from families.classify.spec import ClassifierHead, ClassifierManifest
from service.manifest import BundleManifest
from service.review import Review, review
from service.runtime.batch_loop import run_rows
from service.runtime.batcher import plan_slices
from service.runtime.family import RequestOptions
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.tokenizer import TextTokenizer
from service.text.truncation import apply_policy
from service.text.windows import plan_windows

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Aggregation = Literal["max", "mean"]


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -x))
    return out


def softmax(x: FloatArray) -> FloatArray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    out: FloatArray = shifted / shifted.sum(axis=-1, keepdims=True)
    return out


def probabilities_of(logits: FloatArray, head: ClassifierHead | str) -> FloatArray:
    """Window logits [windows, classes] → probabilities: sigmoid (multi-label) or softmax."""
    return sigmoid(logits) if head == "multi-label" else softmax(logits)


def aggregate(
    window_probs: FloatArray, owner: IntArray, documents: int, aggregation: Aggregation
) -> FloatArray:
    """Per-text probabilities [documents, classes] from window probabilities and their owners."""
    combine = np.max if aggregation == "max" else np.mean
    return np.stack([combine(window_probs[owner == d], axis=0) for d in range(documents)])


@dataclass(frozen=True)
class ClassScore:
    label: str
    probability: float
    threshold: float  # multi-label: the class's; single-label: the abstain threshold (0 if none)


@dataclass
class DocumentProbabilities:
    probabilities: FloatArray  # [documents, classes]
    windows: list[int]
    tokens: int
    timings: dict[str, float] = field(default_factory=dict)
    text_tokens: list[int] = field(default_factory=list)  # per text: content tokens
    truncated: list[bool] = field(default_factory=list)  # per text: only the first window read


@dataclass
class ClassPrediction:
    """What the runtime answers for one request."""

    labels: list[list[ClassScore]]  # per text: predicted classes, most probable first
    probabilities: FloatArray  # [texts, classes], in the bundle's label order
    windows: list[int]
    tokens: int
    timings: dict[str, float]
    text_tokens: list[int] = field(default_factory=list)  # per text: content tokens
    truncated: list[bool] = field(default_factory=list)  # per text: only the first window read
    # per text, when the bundle carries per-class automation: whether a person must look, and why
    reviews: list[Review] | None = None

    @property
    def total_windows(self) -> int:
        return sum(self.windows)


def same_decisions(served: ClassPrediction, other: ClassPrediction) -> bool:
    """Shadow agreement: every text has the same decided classes (their labels; probabilities
    may differ)."""

    def decided(p: ClassPrediction) -> list[set[str]]:
        return [{c.label for c in text} for text in p.labels]

    return decided(served) == decided(other)


@dataclass
class ClassifierInputs:
    """One request after tokenization (windows cut), before any ONNX call."""

    texts: list[str]
    top_k: int | None
    rows: list[IntArray]  # content token ids of every window
    owner: list[int]  # the document (index in texts) of each window
    tokens: int
    special_tokens: int
    tokenize_seconds: float
    text_tokens: list[int] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)

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

    def split(self, max_windows: int, max_tokens: int) -> list[ClassifierSlice]:
        """Consecutive windows in groups within the budget (the batcher runs one per turn)."""
        widths = [len(r) + self.special_tokens for r in self.rows]
        return [
            ClassifierSlice(self, part) for part in plan_slices(widths, max_windows, max_tokens)
        ]


@dataclass
class ClassifierSlice:
    """Some windows of one request: their probabilities, merged by ``ClassifierPipeline.merge``."""

    parent: ClassifierInputs
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

    def split(self, max_windows: int, max_tokens: int) -> list[ClassifierSlice]:
        return [self]


@dataclass
class ClassifierSliceScores:
    probabilities: FloatArray  # [windows of the slice, classes]
    seconds: float


class ClassifierPipeline:
    """Everything between a list of texts and their classes, for one classifier bundle."""

    allow_blank = False  # a blank text has nothing to classify: 422

    def __init__(
        self,
        manifest: ClassifierManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 8,
        max_batch_tokens: int = 16_384,
        aggregation: Aggregation | None = None,
        max_chars: int = 100_000,
    ) -> None:
        self.manifest = manifest
        self.spec = manifest.classifier
        self.head: ClassifierHead = self.spec.head
        self.max_chars = max_chars
        self.session = session
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        # An aggregation override (INFER_POSTURE_AGGREGATION) applies to multi-label heads only:
        # the mean is what keeps a single-label text's probabilities a distribution.
        chosen = aggregation if self.head == "multi-label" else None
        self.aggregation: Aggregation = chosen or self.spec.aggregation
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)
        self.thresholds = np.asarray(
            self.spec.thresholds or [0.0] * len(manifest.labels), dtype=np.float64
        )
        self.abstain = self.spec.abstain_threshold
        self.automation = manifest.automation

    @classmethod
    def from_bundle(
        cls,
        manifest: BundleManifest,
        bundle_dir: Path,
        session: InferenceSession,
        settings: Settings,
    ) -> ClassifierPipeline:
        if not isinstance(manifest, ClassifierManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not a classifier")
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
        spec = self.spec
        return {
            "head": self.head,
            "problem_type": spec.problem_type,
            "architecture": spec.architecture,
            "global_attention": spec.global_attention,
            "thresholds": None
            if spec.thresholds is None
            else dict(zip(self.manifest.labels, spec.thresholds, strict=True)),
            "abstain_threshold": spec.abstain_threshold,
            "aggregation": self.aggregation,
            "calibration": spec.calibration.model_dump(exclude={"automation"})
            if spec.calibration
            else None,
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> ClassifierInputs:
        """Tokenize and cut windows: what the batcher needs to know a request's cost."""
        started = time.perf_counter()
        encoded = self.tokenizer.encode_batch(texts)
        options = options or RequestOptions()
        rows: list[IntArray] = []
        owner: list[int] = []
        truncated: list[bool] = []
        for doc, e in enumerate(encoded):
            planned = plan_windows(len(e), self.capacity, self.stride)
            field_name = "text" if len(texts) == 1 else f"texts[{doc}]"
            kept, cut = apply_policy(options.truncation, planned, len(e), self.capacity, field_name)
            truncated.append(cut)
            for w in kept:
                rows.append(e.ids[w.start : w.end])
                owner.append(doc)
        return ClassifierInputs(
            texts=texts,
            top_k=options.top_k,
            rows=rows,
            owner=owner,
            tokens=sum(len(e) for e in encoded),
            special_tokens=self.tokenizer.num_special_tokens,
            tokenize_seconds=time.perf_counter() - started,
            text_tokens=[len(e) for e in encoded],
            truncated=truncated,
        )

    def probabilities(self, texts: list[str]) -> DocumentProbabilities:
        """Aggregated per-class probabilities of each text."""
        item = self.prepare(texts)
        started = time.perf_counter()
        window_probs = self._window_probabilities(item.rows)
        return self._aggregate(item, window_probs, time.perf_counter() - started)

    def run_slice(self, part: ClassifierSlice) -> ClassifierSliceScores:
        """Window probabilities of one slice (aggregation waits for ``merge``)."""
        started = time.perf_counter()
        probs = self._window_probabilities([part.parent.rows[i] for i in part.rows])
        return ClassifierSliceScores(probs, time.perf_counter() - started)

    def merge(self, item: ClassifierInputs, parts: list[ClassifierSliceScores]) -> ClassPrediction:
        """The request's classes from its slices' window probabilities, in window order."""
        window_probs = np.concatenate([part.probabilities for part in parts])
        result = self._aggregate(item, window_probs, sum(part.seconds for part in parts))
        return self._select(result, item.top_k)

    def predict(self, texts: list[str], top_k: int | None = None) -> ClassPrediction:
        return self.run_prepared([self.prepare(texts, RequestOptions(top_k=top_k))])[0]

    def run_prepared(self, items: list[ClassifierInputs]) -> list[ClassPrediction]:
        """Several requests in shared ONNX calls; each keeps its own ``top_k``."""
        started = time.perf_counter()
        window_probs = self._window_probabilities([r for item in items for r in item.rows])
        seconds = time.perf_counter() - started
        results, offset = [], 0
        for item in items:
            mine = window_probs[offset : offset + len(item.rows)]
            offset += len(item.rows)
            results.append(self._select(self._aggregate(item, mine, seconds), item.top_k))
        return results

    def _window_probabilities(self, rows: list[IntArray]) -> FloatArray:
        """Probabilities of every window, in length-sorted ONNX calls."""
        if not rows:
            return np.empty((0, len(self.manifest.labels)))
        logits = run_rows(
            self.session,
            rows,
            self.tokenizer,
            self.manifest.tokenizer.pad_token_id,
            self.max_batch_size,
            self.max_batch_tokens,
        )
        return probabilities_of(np.stack(logits), self.head)

    def _aggregate(
        self, item: ClassifierInputs, window_probs: FloatArray, inference_seconds: float
    ) -> DocumentProbabilities:
        started = time.perf_counter()
        owners = np.asarray(item.owner, dtype=np.int64)
        documents = aggregate(window_probs, owners, len(item.texts), self.aggregation)
        return DocumentProbabilities(
            probabilities=documents,
            windows=np.bincount(owners, minlength=len(item.texts)).tolist(),
            tokens=item.tokens,
            timings={
                "tokenize": item.tokenize_seconds,
                "inference": inference_seconds,
                "decode": time.perf_counter() - started,
            },
            text_tokens=item.text_tokens,
            truncated=item.truncated,
        )

    def decide(self, probs: FloatArray) -> list[int]:
        """Predicted class indices of one text, most probable first."""
        if self.head == "single-label":
            top = int(np.argmax(probs))
            return [] if self.abstain is not None and probs[top] < self.abstain else [top]
        chosen = np.flatnonzero(probs >= self.thresholds)
        return [int(c) for c in chosen[np.argsort(-probs[chosen], kind="stable")]]

    def _select(self, result: DocumentProbabilities, top_k: int | None) -> ClassPrediction:
        """Decisions per text, at most ``top_k``, each with its probability and threshold."""
        labels = self.manifest.labels
        threshold = (
            np.full(len(labels), self.abstain or 0.0)
            if self.head == "single-label"
            else (self.thresholds)
        )
        chosen = [
            [
                ClassScore(labels[c], float(probs[c]), float(threshold[c]))
                for c in self.decide(probs)[:top_k]
            ]
            for probs in result.probabilities
        ]
        return ClassPrediction(
            chosen,
            result.probabilities,
            result.windows,
            result.tokens,
            result.timings,
            text_tokens=result.text_tokens,
            truncated=result.truncated,
            reviews=self._review(result.probabilities),
        )

    def _review(self, probabilities: FloatArray) -> list[Review] | None:
        """Per text, who decides (docs/review.md); None when the bundle has no automation."""
        if self.automation is None:
            return None
        classes = self.automation.classes
        return review(
            probabilities,
            self.manifest.labels,
            self.thresholds,
            [c.automate for c in classes],
            [c.band_low for c in classes],
            [c.band_high for c in classes],
        )
