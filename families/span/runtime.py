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

from families.ner.runtime import Entity, FloatArray, NerPipeline
from families.span.decoding import SpanRule, decode_spans
from families.span.spec import SpanManifest
from service.manifest import BundleManifest
from service.runtime.batch_loop import run_rows
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.graphemes import Graphemes
from service.text.tokenizer import EncodedText, TextTokenizer, words_of
from service.text.windows import Window, gather_tokens


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
        self.session = session
        self.max_batch_size = max_batch_size
        self.max_chars = max_chars
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.rule = SpanRule.from_spec(manifest.span)
        self.labels = list(manifest.labels)
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)

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

    def _scores(
        self, encoded: list[EncodedText], windows: list[list[Window]]
    ) -> list[list[FloatArray]]:
        jobs = [(t, w) for t, text_windows in enumerate(windows) for w in text_windows]
        rows = [encoded[t].ids[w.start : w.end] for t, w in jobs]
        pad = self.span_manifest.tokenizer.pad_token_id
        outputs = run_rows(self.session, rows, self.tokenizer, pad, self.max_batch_size)
        grouped: list[list[FloatArray]] = [[] for _ in encoded]
        for (t, _), output in zip(jobs, outputs, strict=True):
            grouped[t].append(output)
        return grouped

    def word_probabilities(
        self, encoded: EncodedText, windows: list[Window], window_scores: list[FloatArray]
    ) -> FloatArray:
        """``[words, 3 * types]``: each word's row at its first sub-token, best-context window."""
        prefix = len(self.tokenizer.prefix_ids)
        content = [s[prefix : prefix + len(w)] for s, w in zip(window_scores, windows, strict=True)]
        return gather_tokens(words_of(encoded).first_token, windows, content, len(encoded))

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
            found = []
            clusters: Graphemes | None = None  # computed once per text, only if it has spans
            for span in decode_spans(probs, self.rule):
                start, end = self._char_span(text, enc, words, span.first, span.last)
                if start != end:
                    clusters = clusters or Graphemes.of(text)
                    start, end = clusters.snap(start, end)  # never half a user-perceived char
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
        return self._char_span(text, encoded, words_of(encoded), first, last)
