"""NER from text to entities: tokenize → windows → emissions (ONNX) → word-level CRF → spans.

The models are trained with labels on the first sub-token of each word, so the CRF runs over
word positions: the first sub-token emissions of each word, in order, without special tokens or
padding. Long texts are cut into overlapping windows; each word takes its emissions from the window
where it has the most context, and one Viterbi pass then runs over the whole text, so an entity can
never be cut or duplicated at a window border.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from service.bundle import NerManifest
from service.ner.crf import CrfParams, forward_backward, segment_probability, viterbi_decode
from service.ner.tagging import BioScheme
from service.runtime.batcher import plan_slices
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs, length_sorted_batches
from service.text.tokenizer import (
    EncodedText,
    TextTokenizer,
    Words,
    extend_to_word_end,
    words_of,
)
from service.text.windows import Window, best_context_window, plan_windows

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Entity:
    label: str
    start: int
    end: int
    text: str
    score: float


@dataclass
class NerPrediction:
    entities: list[list[Entity]]
    timings: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    tokens: int = 0

    @property
    def total_windows(self) -> int:
        return self.windows


@dataclass
class NerInputs:
    """One request after tokenization, before any ONNX call."""

    texts: list[str]
    encoded: list[EncodedText]
    windows: list[list[Window]]
    tokenize_seconds: float
    special_tokens: int

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return sum(len(w) for w in self.windows)

    @property
    def tokens(self) -> int:
        return sum(len(e) for e in self.encoded)

    @property
    def width(self) -> int:
        """Padded row length of this request's longest window, special tokens included."""
        longest = max((len(w) for ws in self.windows for w in ws), default=0)
        return longest + self.special_tokens

    def split(self, max_windows: int, max_tokens: int) -> list[NerSlice]:
        """Consecutive windows in groups within the budget (the batcher runs one per turn)."""
        refs = [(t, w) for t, ws in enumerate(self.windows) for w in range(len(ws))]
        widths = [len(self.windows[t][w]) + self.special_tokens for t, w in refs]
        return [
            NerSlice(self, [refs[i] for i in part])
            for part in plan_slices(widths, max_windows, max_tokens)
        ]


@dataclass
class NerSlice:
    """Some windows of one request: their emissions, merged back by ``NerPipeline.merge``."""

    parent: NerInputs
    refs: list[tuple[int, int]]  # (text, window index in that text)

    @property
    def num_texts(self) -> int:
        return len({t for t, _ in self.refs})

    @property
    def num_windows(self) -> int:
        return len(self.refs)

    @property
    def width(self) -> int:
        longest = max(len(self.parent.windows[t][w]) for t, w in self.refs)
        return longest + self.parent.special_tokens

    @property
    def tokens(self) -> int:
        return sum(len(self.parent.windows[t][w]) for t, w in self.refs)

    def split(self, max_windows: int, max_tokens: int) -> list[NerSlice]:
        return [self]


@dataclass
class NerSliceScores:
    scores: dict[tuple[int, int], FloatArray]  # (text, window) -> content-token emissions
    seconds: float


class NerPipeline:
    """Everything between a list of strings and their entities, for one NER bundle."""

    def __init__(
        self,
        manifest: NerManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 32,
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.max_batch_size = max_batch_size
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.scheme = BioScheme.parse(manifest.labels)
        crf = manifest.ner.crf
        params = CrfParams.from_lists(crf.start, crf.end, crf.transitions)
        if manifest.ner.constrain_transitions:
            params = params.with_penalties(*self.scheme.penalties())
        self.crf = params
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)

    def prepare(self, texts: list[str]) -> NerInputs:
        """Tokenize and plan windows: what the batcher needs to know a request's cost."""
        started = time.perf_counter()
        encoded = self.tokenizer.encode_batch(texts)
        windows = [
            plan_windows(len(e), self.capacity, self.stride) if len(e) else [] for e in encoded
        ]
        return NerInputs(
            texts,
            encoded,
            windows,
            time.perf_counter() - started,
            self.tokenizer.num_special_tokens,
        )

    def predict(self, texts: list[str]) -> NerPrediction:
        return self.run_prepared([self.prepare(texts)])[0]

    def run_prepared(self, items: list[NerInputs]) -> list[NerPrediction]:
        """Several requests in one pass (shared ONNX calls); each gets back only its own texts."""
        texts = [t for item in items for t in item.texts]
        encoded = [e for item in items for e in item.encoded]
        windows = [w for item in items for w in item.windows]
        started = time.perf_counter()
        window_scores = self._emissions(encoded, windows)
        inferred = time.perf_counter()
        entities = self._decode(texts, encoded, windows, window_scores)
        done = time.perf_counter()
        results, offset = [], 0
        for item in items:
            results.append(
                NerPrediction(
                    entities=entities[offset : offset + len(item.texts)],
                    timings={
                        "tokenize": item.tokenize_seconds,
                        "inference": inferred - started,
                        "decode": done - inferred,
                    },
                    windows=item.num_windows,
                    tokens=item.tokens,
                )
            )
            offset += len(item.texts)
        return results

    def run_slice(self, part: NerSlice) -> NerSliceScores:
        """Emissions of one slice's windows (ONNX only; decoding waits for ``merge``)."""
        started = time.perf_counter()
        texts = sorted({t for t, _ in part.refs})
        picked = [[w for u, w in part.refs if u == t] for t in texts]
        windows = [
            [part.parent.windows[t][w] for w in ws] for t, ws in zip(texts, picked, strict=True)
        ]
        grouped = self._emissions([part.parent.encoded[t] for t in texts], windows)
        scores = {
            (t, w): score
            for t, ws, group in zip(texts, picked, grouped, strict=True)
            for w, score in zip(ws, group, strict=True)
        }
        return NerSliceScores(scores, time.perf_counter() - started)

    def merge(self, item: NerInputs, parts: list[NerSliceScores]) -> NerPrediction:
        """The request's entities from its slices' emissions: one Viterbi pass per text."""
        scores = {key: value for part in parts for key, value in part.scores.items()}
        started = time.perf_counter()
        grouped = [[scores[(t, w)] for w in range(len(ws))] for t, ws in enumerate(item.windows)]
        entities = self._decode(item.texts, item.encoded, item.windows, grouped)
        return NerPrediction(
            entities=entities,
            timings={
                "tokenize": item.tokenize_seconds,
                "inference": sum(part.seconds for part in parts),
                "decode": time.perf_counter() - started,
            },
            windows=item.num_windows,
            tokens=item.tokens,
        )

    def _emissions(
        self, encoded: list[EncodedText], windows: list[list[Window]]
    ) -> list[list[FloatArray]]:
        """Per text, per window: emissions [window length, tags] of the content tokens."""
        jobs = [(t, w) for t, text_windows in enumerate(windows) for w in text_windows]
        rows = [encoded[t].ids[w.start : w.end] for t, w in jobs]
        results: list[FloatArray | None] = [None] * len(jobs)
        offset = len(self.tokenizer.prefix_ids)
        for batch in length_sorted_batches([len(r) for r in rows], self.max_batch_size):
            inputs = build_inputs(
                [rows[i] for i in batch],
                self.tokenizer.prefix_ids,
                self.tokenizer.suffix_ids,
                self.manifest.tokenizer.pad_token_id,
            )
            scores = self.session.run(inputs).astype(np.float64)
            for slot, i in enumerate(batch):
                results[i] = scores[slot, offset : offset + len(rows[i])]
        grouped: list[list[FloatArray]] = [[] for _ in encoded]
        for (t, _), result in zip(jobs, results, strict=True):
            assert result is not None
            grouped[t].append(result)
        return grouped

    def _word_emissions(
        self, words: Words, windows: list[Window], scores: list[FloatArray], num_tokens: int
    ) -> FloatArray:
        """Emissions of each word's first sub-token, from the window with the most context."""
        chosen = best_context_window(windows, num_tokens)[words.first_token]
        out = np.empty((len(words), self.crf.num_tags))
        for w, window in enumerate(windows):
            picked = chosen == w
            out[picked] = scores[w][words.first_token[picked] - window.start]
        return out

    def _decode(
        self,
        texts: list[str],
        encoded: list[EncodedText],
        windows: list[list[Window]],
        window_scores: list[list[FloatArray]],
    ) -> list[list[Entity]]:
        """One batched Viterbi + forward-backward over the word positions of every text."""
        words = [words_of(e) for e in encoded]
        live = [i for i, w in enumerate(words) if len(w)]
        results: list[list[Entity]] = [[] for _ in texts]
        if not live:
            return results
        lengths = np.asarray([len(words[i]) for i in live], dtype=np.int64)
        emissions = np.zeros((len(live), int(lengths.max()), self.crf.num_tags))
        for row, i in enumerate(live):
            emissions[row, : lengths[row]] = self._word_emissions(
                words[i], windows[i], window_scores[i], len(encoded[i])
            )
        tags = viterbi_decode(emissions, lengths, self.crf)
        fb = forward_backward(emissions, lengths, self.crf)
        for row, i in enumerate(live):
            found = []
            for first, last, label in self.scheme.spans(tags[row, : lengths[row]]):
                start, end = self._char_span(texts[i], encoded[i], words[i], first, last)
                score = segment_probability(fb, emissions, self.crf, row, tags[row], first, last)
                found.append(Entity(label, start, end, texts[i][start:end], round(score, 6)))
            results[i] = found
        return results

    @staticmethod
    def _char_span(
        text: str, encoded: EncodedText, words: Words, first: int, last: int
    ) -> tuple[int, int]:
        """Characters from the start of the first word to the true end of the last word."""
        after_last = int(words.first_token[last + 1]) if last + 1 < len(words) else len(encoded)
        limit = int(encoded.offsets[after_last, 0]) if after_last < len(encoded) else len(text)
        end = extend_to_word_end(text, int(words.char_end[last]), limit)
        return int(words.char_start[first]), end
