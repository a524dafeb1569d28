"""The joint runtime: tokenize once → windows → ONE ONNX pass (packed output) → every head.

The token head is decoded by the NER runtime's own code (:class:`families.ner.runtime.NerPipeline`:
first-sub-token gathering, window stitching, constrained Viterbi, exact character offsets) after
the fixed mask sets the scores of labels never to emit to ``MASK_VALUE``; each sequence head by the
classifier runtime's (:class:`families.classify.runtime.ClassifierPipeline`: window probabilities,
aggregation, thresholds or argmax + abstention), on that head's columns of the window's first row.
Both read the same windows from the same call, so a batch costs one encoder run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from families.classify.runtime import (
    ClassifierInputs,
    ClassifierPipeline,
    ClassPrediction,
    probabilities_of,
)
from families.classify.spec import ClassifyManifest
from families.joint.spec import MASK_VALUE, JointManifest, SequenceHead
from families.ner.runtime import NerInputs, NerPipeline, NerPrediction, NerSlice, NerSliceScores
from families.ner.spec import NerManifest
from service.manifest import BundleManifest
from service.runtime.family import RequestOptions
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.tokenizer import EncodedText
from service.text.windows import Window

FloatArray = NDArray[np.float64]


def ner_view(manifest: JointManifest) -> NerManifest:
    """The token head seen as the NER bundle it decodes like."""
    return NerManifest(
        schema_version=4,
        name=manifest.name,
        version=manifest.version,
        labels=manifest.labels,
        onnx=manifest.onnx,
        tokenizer=manifest.tokenizer,
        export=manifest.export,
        parity=manifest.parity,
        ner=manifest.joint.token.ner,
    )


def head_view(manifest: JointManifest, head: SequenceHead) -> ClassifyManifest:
    """One sequence head seen as the classifier bundle it decides like."""
    return ClassifyManifest(
        schema_version=4,
        name=manifest.name,
        version=manifest.version,
        labels=head.labels,
        onnx=manifest.onnx,
        tokenizer=manifest.tokenizer,
        export=manifest.export,
        parity=manifest.parity,
        classify=head.classify,
    )


@dataclass
class JointPrediction(NerPrediction):
    """Entities (so ``/v1/entities`` serves it as is) plus every sequence head's classes."""

    heads: dict[str, ClassPrediction] = field(default_factory=dict)


@dataclass
class JointInputs:
    """One request after tokenization: the token head's windows serve every head."""

    tagged: NerInputs
    top_k: int | None

    @property
    def num_texts(self) -> int:
        return self.tagged.num_texts

    @property
    def num_windows(self) -> int:
        return self.tagged.num_windows

    @property
    def width(self) -> int:
        return self.tagged.width

    @property
    def tokens(self) -> int:
        return self.tagged.tokens

    def split(self, max_windows: int, max_tokens: int) -> list[NerSlice]:
        return self.tagged.split(max_windows, max_tokens)


class JointRuntime:
    """Everything between texts and every head's answer, for one joint bundle (a
    :class:`~service.runtime.family.SequenceHeads` runtime: ``/v1/classify`` answers one head,
    ``/v1/parse`` all of them)."""

    allow_blank = False  # every sequence head needs something to classify
    result_type = JointPrediction

    def __init__(
        self,
        manifest: JointManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 32,
        max_chars: int = 10_000,
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.max_chars = max_chars
        self.tagger = NerPipeline(
            ner_view(manifest), bundle_dir, session, max_batch_size, max_chars
        )
        self.heads = {
            h.name: ClassifierPipeline(
                head_view(manifest, h), bundle_dir, session, max_batch_size, max_chars=max_chars
            )
            for h in manifest.joint.sequence
        }
        self.columns = manifest.columns
        labels = manifest.labels
        self.masked = np.asarray(
            [labels.index(t) for t in manifest.joint.token.masked_labels], dtype=np.int64
        )

    @classmethod
    def from_bundle(
        cls,
        manifest: BundleManifest,
        bundle_dir: Path,
        session: InferenceSession,
        settings: Settings,
    ) -> JointRuntime:
        if not isinstance(manifest, JointManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not joint")
        return cls(manifest, bundle_dir, session, settings.max_batch_size, settings.max_text_chars)

    @property
    def intent_head(self) -> str:
        return self.manifest.joint.intent_head

    def head_kinds(self) -> dict[str, Literal["multi-label", "single-label"]]:
        return {h.name: h.classify.head for h in self.manifest.joint.sequence}

    def head_labels(self, name: str) -> list[str]:
        return self.manifest.joint.head(name).labels

    def head_prediction(self, result: Any, name: str) -> ClassPrediction:
        if not isinstance(result, JointPrediction):
            raise TypeError(f"not a joint prediction: {type(result).__name__}")
        return result.heads[name]

    def describe(self) -> dict[str, object]:
        spec = self.manifest.joint
        return {
            "token_head": {
                "name": spec.token.name,
                **self.tagger.describe(),
                "masked_labels": spec.token.masked_labels,
            },
            "sequence_heads": {
                h.name: {"labels": h.labels, "pooling": h.pooling, **self.heads[h.name].describe()}
                for h in spec.sequence
            },
            "intent_head": spec.intent_head,
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> JointInputs:
        tagged = self.tagger.prepare(texts, options)
        # The tagger plans no window for a text without content tokens (e.g. "\b"), but the
        # sequence heads answer every text: it gets one window of special tokens only, like
        # the classifier runtime gives it; the token head finds no word there.
        tagged.windows = [ws or [Window(0, 0)] for ws in tagged.windows]
        return JointInputs(tagged, options.top_k if options else None)

    def predict(self, texts: list[str], top_k: int | None = None) -> JointPrediction:
        return self.run_prepared([self.prepare(texts, RequestOptions(top_k=top_k))])[0]

    def run_prepared(self, items: list[JointInputs]) -> list[JointPrediction]:
        """Several requests in shared ONNX calls (every head from the same calls)."""
        encoded = [e for item in items for e in item.tagged.encoded]
        windows = [w for item in items for w in item.tagged.windows]
        started = time.perf_counter()
        scores = self.tagger._scores(encoded, windows)  # the packed output of every window
        seconds = time.perf_counter() - started
        results, offset = [], 0
        for item in items:
            n = item.num_texts
            results.append(self._answer(item, scores[offset : offset + n], seconds))
            offset += n
        return results

    def run_slice(self, part: NerSlice) -> NerSliceScores:
        """The packed output of one slice's windows (decoding waits for ``merge``)."""
        return self.tagger.run_slice(part)

    def merge(self, item: JointInputs, parts: list[NerSliceScores]) -> JointPrediction:
        scores = {key: value for part in parts for key, value in part.scores.items()}
        grouped = [
            [scores[(t, w)] for w in range(len(ws))] for t, ws in enumerate(item.tagged.windows)
        ]
        return self._answer(item, grouped, sum(part.seconds for part in parts))

    def token_scores(self, packed: FloatArray) -> FloatArray:
        """The token head's columns of a window's packed rows, masked labels at ``MASK_VALUE``."""
        first, last = self.columns[self.manifest.joint.token.name]
        scores = packed[:, first:last].copy()
        scores[:, self.masked] = MASK_VALUE
        return scores

    def head_probabilities(self, name: str, window_packed: list[FloatArray]) -> FloatArray:
        """One sequence head's probabilities per window (its columns of each window's first row)."""
        first, last = self.columns[name]
        logits = np.stack([p[0, first:last] for p in window_packed])
        return probabilities_of(logits, self.heads[name].head)

    def _answer(
        self, item: JointInputs, packed: list[list[FloatArray]], seconds: float
    ) -> JointPrediction:
        tagged = item.tagged
        started = time.perf_counter()
        entities = self.tagger._decode(
            tagged.texts,
            tagged.encoded,
            tagged.windows,
            [[self.token_scores(p) for p in text] for text in packed],
        )
        heads = self._classes(item, tagged.encoded, tagged.windows, packed, seconds)
        return JointPrediction(
            entities=entities,
            timings={
                "tokenize": tagged.tokenize_seconds,
                "inference": seconds,
                "decode": time.perf_counter() - started,
            },
            windows=tagged.num_windows,
            tokens=tagged.tokens,
            heads=heads,
            **tagged.per_text(),
        )

    def _classes(
        self,
        item: JointInputs,
        encoded: list[EncodedText],
        windows: list[list[Window]],
        packed: list[list[FloatArray]],
        seconds: float,
    ) -> dict[str, ClassPrediction]:
        flat = [p for text in packed for p in text]
        inputs = ClassifierInputs(
            texts=item.tagged.texts,
            top_k=item.top_k,
            rows=[
                e.ids[w.start : w.end] for e, ws in zip(encoded, windows, strict=True) for w in ws
            ],
            owner=[t for t, ws in enumerate(windows) for _ in ws],
            tokens=item.tokens,
            special_tokens=item.tagged.special_tokens,
            tokenize_seconds=item.tagged.tokenize_seconds,
            text_tokens=item.tagged.per_text()["text_tokens"],
            truncated=item.tagged.per_text()["truncated"],
        )
        answers = {}
        for name, pipeline in self.heads.items():
            probs = self.head_probabilities(name, flat)
            answers[name] = pipeline._select(
                pipeline._aggregate(inputs, probs, seconds), item.top_k
            )
        return answers
