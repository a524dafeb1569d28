"""The span runtime (``span/span``): tokenize → windows → ONNX → word probabilities → spans.

Everything up to the graph's output is the NER runtime's
(:class:`families.ner.runtime.NerPipeline`: tokenization, overlapping windows, shared ONNX calls,
slices of large requests); this class swaps its decoder. A word's probabilities are read at its
first sub-token, each word from the window where it has the most context, and the spans of a whole
text are then decoded at once (:mod:`families.span.decoding`), so a span is never cut or
duplicated at a window border. Character offsets are the NER runtime's (no leading/trailing
whitespace, the last word to its true end).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from families.ner.runtime import Entity, FloatArray, NerPipeline, WordChars, char_span
from families.span.decoding import SpanRule, decode_spans
from families.span.spec import SpanManifest
from service.manifest import BundleManifest
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.tokenizer import EncodedText, words_of
from service.text.windows import Window


class SpanRuntime(NerPipeline):
    """Answers ``/v1/entities`` with ``NerPrediction``s; entities of several types may overlap."""

    allow_blank = True

    def __init__(  # the NER runtime's state, minus its tag decoder
        self,
        manifest: SpanManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 32,
        max_chars: int = 10_000,
    ) -> None:
        self.span_manifest = manifest
        self._open_windows(manifest.tokenizer, bundle_dir, session, max_batch_size, max_chars)
        self.rule = SpanRule.from_spec(manifest.span)
        self.labels = list(manifest.labels)

    @classmethod
    def from_bundle(
        cls,
        manifest: BundleManifest,
        bundle_dir: Path,
        session: InferenceSession,
        settings: Settings,
    ) -> SpanRuntime:
        if not isinstance(manifest, SpanManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not span")
        return cls(manifest, bundle_dir, session, settings.max_batch_size, settings.max_text_chars)

    def describe(self) -> dict[str, object]:
        spec = self.span_manifest.span
        return {
            "head": spec.head,
            "inside": spec.inside,
            "nested": spec.nested,
            "thresholds": {
                label: cut.model_dump()
                for label, cut in zip(self.labels, spec.thresholds, strict=True)
            },
            "calibrated": spec.calibration is not None,
        }

    def word_probabilities(
        self, encoded: EncodedText, windows: list[Window], window_scores: list[FloatArray]
    ) -> FloatArray:
        """``[words, 3 * types]``: each word's row at its first sub-token, best-context window."""
        return self.word_rows(encoded, words_of(encoded), windows, window_scores)

    def _decode(
        self,
        texts: list[str],
        encoded: list[EncodedText],
        windows: list[list[Window]],
        window_scores: list[list[FloatArray]],
        alternatives: int = 0,  # the tagger's next-best labels: a span head has none
    ) -> list[list[Entity]]:
        results: list[list[Entity]] = []
        for text, enc, text_windows, scores in zip(
            texts, encoded, windows, window_scores, strict=True
        ):
            words = words_of(enc)
            if not len(words):
                results.append([])
                continue
            probs = self.word_probabilities(enc, text_windows, scores)
            found, chars = [], WordChars(text, enc, words)
            for span in decode_spans(probs, self.rule):
                if (at := chars.span(span.first, span.last)) is not None:
                    start, end = at
                    label = self.labels[span.label]
                    found.append(Entity(label, start, end, text[start:end], round(span.score, 6)))
            order = {label: i for i, label in enumerate(self.labels)}
            results.append(sorted(found, key=lambda e: (e.start, e.end, order[e.label])))
        return results

    def probabilities(self, texts: list[str]) -> list[FloatArray]:
        """Per text, ``[words, 3 * types]`` as served (windows stitched); calibration reads it."""
        item = self.prepare(texts)
        scores = self._scores(item.encoded, item.windows)
        return [
            self.word_probabilities(enc, ws, sc) if len(words_of(enc)) else np.zeros((0, 0))
            for enc, ws, sc in zip(item.encoded, item.windows, scores, strict=True)
        ]

    def char_span(self, text: str, encoded: EncodedText, first: int, last: int) -> tuple[int, int]:
        """Characters of words ``first..last`` exactly as served (whitespace trimmed)."""
        return char_span(text, encoded, words_of(encoded), first, last)
