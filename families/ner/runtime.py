"""The NER runtime (``ner/crf`` and ``ner/softmax``): tokenize → windows → ONNX → words → spans.

Words are the fast tokenizer's ``word_ids()``; a word's scores are the head's output at its first
sub-token (where training put its label). Long texts are cut into overlapping windows; each word
takes its scores from the window where it has the most context, and one constrained Viterbi pass
(:mod:`families.ner.decoding`) then runs over the whole text, so an entity can never be cut or
duplicated at a window border. CRF and softmax heads differ only in the decoder's scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from families.ner.decoding import Decoded, WordDecoder
from families.ner.marginals import alternatives, label_marginals
from families.ner.spec import NerManifest
from service.manifest import BundleManifest
from service.runtime.batch_loop import run_rows
from service.runtime.batcher import plan_slices
from service.runtime.family import RequestOptions
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.graphemes import Graphemes
from service.text.tokenizer import (
    EncodedText,
    TextTokenizer,
    Words,
    extend_to_word_end,
    first_whole_words,
    words_of,
)
from service.text.truncation import apply_policy
from service.text.windows import Window, gather_tokens, plan_windows

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Entity:
    label: str
    start: int
    end: int
    text: str
    score: float
    alternatives: tuple[tuple[str, float], ...] = ()  # (label, label marginal), on request


@dataclass
class NerPrediction:
    entities: list[list[Entity]]
    timings: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    tokens: int = 0
    text_tokens: list[int] = field(default_factory=list)  # per text: content tokens
    text_windows: list[int] = field(default_factory=list)  # per text: windows read
    truncated: list[bool] = field(default_factory=list)  # per text: not read to the end

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
    alternatives: int = 0  # next-best labels asked per entity (RequestOptions.alternatives)
    text_tokens: list[int] = field(default_factory=list)  # per text, before any truncation
    truncated: list[bool] = field(default_factory=list)  # per text: only its first window read

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return sum(len(w) for w in self.windows)

    @property
    def tokens(self) -> int:
        return sum(len(e) for e in self.encoded)

    def per_text(self) -> dict[str, Any]:
        """What each text's result reports: tokens, windows read, truncated."""
        return {
            "text_tokens": self.text_tokens or [len(e) for e in self.encoded],
            "text_windows": [len(w) for w in self.windows],
            "truncated": self.truncated or [False] * len(self.texts),
        }

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
    """Some windows of one request: their scores, merged back by ``NerPipeline.merge``."""

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
    scores: dict[tuple[int, int], FloatArray]  # (text, window) -> the graph's output rows
    seconds: float


class NerPipeline:
    """Everything between a list of strings and their entities, for one NER bundle."""

    allow_blank = True  # an empty text has no entities

    def __init__(
        self,
        manifest: NerManifest,
        bundle_dir: Path,
        session: InferenceSession,
        max_batch_size: int = 32,
        max_chars: int = 10_000,
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.max_batch_size = max_batch_size
        self.max_chars = max_chars
        self.tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
        self.decoder = WordDecoder.from_spec(manifest.ner, manifest.labels)
        self.scheme = self.decoder.scheme
        self.capacity = manifest.tokenizer.max_length - self.tokenizer.num_special_tokens
        self.stride = min(manifest.tokenizer.stride, self.capacity - 1)

    @classmethod
    def from_bundle(
        cls,
        manifest: BundleManifest,
        bundle_dir: Path,
        session: InferenceSession,
        settings: Settings,
    ) -> NerPipeline:
        if not isinstance(manifest, NerManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not ner")
        return cls(manifest, bundle_dir, session, settings.max_batch_size, settings.max_text_chars)

    def describe(self) -> dict[str, object]:
        spec = self.manifest.ner
        return {
            "head": spec.head,
            "tag_scheme": spec.tag_scheme,
            "constrain_transitions": spec.constrain_transitions,
            "subtokens": spec.subtokens,
            "crf_positions": spec.crf_positions,
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> NerInputs:
        """Tokenize and plan windows: what the batcher needs to know a request's cost."""
        started = time.perf_counter()
        options = options or RequestOptions()
        encoded = self.tokenizer.encode_batch(texts)
        tokens = [len(e) for e in encoded]
        windows, truncated = [], []
        for i, e in enumerate(encoded):
            planned = plan_windows(len(e), self.capacity, self.stride) if len(e) else []
            field = "text" if len(texts) == 1 else f"texts[{i}]"
            kept, cut = apply_policy(options.truncation, planned, len(e), self.capacity, field)
            if cut:
                encoded[i] = first_whole_words(e, kept[0].end)
                kept = [Window(0, len(encoded[i]))]
            windows.append(kept)
            truncated.append(cut)
        return NerInputs(
            texts,
            encoded,
            windows,
            time.perf_counter() - started,
            self.tokenizer.num_special_tokens,
            options.alternatives,
            tokens,
            truncated,
        )

    def predict(self, texts: list[str]) -> NerPrediction:
        return self.run_prepared([self.prepare(texts)])[0]

    def run_prepared(self, items: list[NerInputs]) -> list[NerPrediction]:
        """Several requests in one pass (shared ONNX calls); each gets back only its own texts."""
        texts = [t for item in items for t in item.texts]
        encoded = [e for item in items for e in item.encoded]
        windows = [w for item in items for w in item.windows]
        started = time.perf_counter()
        window_scores = self._scores(encoded, windows)
        inferred = time.perf_counter()
        most = max((item.alternatives for item in items), default=0)
        entities = self._decode(texts, encoded, windows, window_scores, most)
        done = time.perf_counter()
        results, offset = [], 0
        for item in items:
            results.append(
                NerPrediction(
                    entities=_keep_alternatives(
                        entities[offset : offset + len(item.texts)], item.alternatives
                    ),
                    timings={
                        "tokenize": item.tokenize_seconds,
                        "inference": inferred - started,
                        "decode": done - inferred,
                    },
                    windows=item.num_windows,
                    tokens=item.tokens,
                    **item.per_text(),
                )
            )
            offset += len(item.texts)
        return results

    def run_slice(self, part: NerSlice) -> NerSliceScores:
        """Scores of one slice's windows (ONNX only; decoding waits for ``merge``)."""
        started = time.perf_counter()
        texts = sorted({t for t, _ in part.refs})
        picked = [[w for u, w in part.refs if u == t] for t in texts]
        windows = [
            [part.parent.windows[t][w] for w in ws] for t, ws in zip(texts, picked, strict=True)
        ]
        grouped = self._scores([part.parent.encoded[t] for t in texts], windows)
        scores = {
            (t, w): score
            for t, ws, group in zip(texts, picked, grouped, strict=True)
            for w, score in zip(ws, group, strict=True)
        }
        return NerSliceScores(scores, time.perf_counter() - started)

    def merge(self, item: NerInputs, parts: list[NerSliceScores]) -> NerPrediction:
        """The request's entities from its slices' scores: one Viterbi pass per text."""
        scores = {key: value for part in parts for key, value in part.scores.items()}
        started = time.perf_counter()
        grouped = [[scores[(t, w)] for w in range(len(ws))] for t, ws in enumerate(item.windows)]
        entities = self._decode(item.texts, item.encoded, item.windows, grouped, item.alternatives)
        return NerPrediction(
            entities=entities,
            timings={
                "tokenize": item.tokenize_seconds,
                "inference": sum(part.seconds for part in parts),
                "decode": time.perf_counter() - started,
            },
            windows=item.num_windows,
            tokens=item.tokens,
            **item.per_text(),
        )

    def _scores(
        self, encoded: list[EncodedText], windows: list[list[Window]]
    ) -> list[list[FloatArray]]:
        """Per text, per window: the graph's output [special + window tokens, tags]."""
        jobs = [(t, w) for t, text_windows in enumerate(windows) for w in text_windows]
        rows = [encoded[t].ids[w.start : w.end] for t, w in jobs]
        pad = self.manifest.tokenizer.pad_token_id
        outputs = run_rows(self.session, rows, self.tokenizer, pad, self.max_batch_size)
        grouped: list[list[FloatArray]] = [[] for _ in encoded]
        for (t, _), output in zip(jobs, outputs, strict=True):
            grouped[t].append(output)
        return grouped

    def _decode(
        self,
        texts: list[str],
        encoded: list[EncodedText],
        windows: list[list[Window]],
        window_scores: list[list[FloatArray]],
        alternatives: int = 0,
    ) -> list[list[Entity]]:
        """One batched Viterbi + forward-backward over the word positions of every text."""
        words = [words_of(e) for e in encoded]
        live = [i for i, w in enumerate(words) if len(w)]
        results: list[list[Entity]] = [[] for _ in texts]
        if not live:
            return results
        prefix = len(self.tokenizer.prefix_ids)
        word_scores = [
            gather_tokens(
                words[i].first_token,
                windows[i],
                [
                    s[prefix : prefix + len(w)]
                    for s, w in zip(window_scores[i], windows[i], strict=True)
                ],
                len(encoded[i]),
            )
            for i in live
        ]
        cls_scores = [window_scores[i][0][0] for i in live]  # position 0 of the first window
        decoded = self.decoder.decode(word_scores, cls_scores if self.decoder.lead else None)
        found: list[tuple[int, int, int, str]] = []  # text, start, end, label
        spans: list[tuple[int, int, int]] = []  # row, first word, last word
        for row, i in enumerate(live):
            clusters: Graphemes | None = None  # computed once per text, only if it has entities
            for first, last, label in self.scheme.spans(decoded.word_tags(row)):
                start, end = self._char_span(texts[i], encoded[i], words[i], first, last)
                if start != end:
                    clusters = clusters or Graphemes.of(texts[i])
                    start, end = clusters.snap(start, end)  # never half a user-perceived char
                    found.append((i, start, end, label))
                    spans.append((row, first, last))
        scores = self.decoder.entity_scores(decoded, spans)  # all entities in a few numpy calls
        for (i, start, end, label), score, (row, first, last) in zip(
            found, scores, spans, strict=True
        ):
            others = self._alternatives(decoded, row, first, last, label, alternatives)
            entity = Entity(label, start, end, texts[i][start:end], round(score, 6), others)
            results[i].append(entity)
        return results

    def _alternatives(
        self, decoded: Decoded, row: int, first: int, last: int, label: str, k: int
    ) -> tuple[tuple[str, float], ...]:
        """The ``k`` next-best labels of words ``first..last`` (:mod:`families.ner.marginals`)."""
        if k <= 0 or decoded.fb is None:
            return ()
        lead = decoded.lead
        marginals = label_marginals(
            decoded.fb, decoded.emissions, self.decoder.crf, self.scheme, row, first + lead,
            last + lead,
        )  # fmt: skip
        return tuple((name, round(p, 6)) for name, p in alternatives(marginals, label, k))

    @staticmethod
    def _char_span(
        text: str, encoded: EncodedText, words: Words, first: int, last: int
    ) -> tuple[int, int]:
        """Characters from the start of the first word to the true end of the last word.

        A byte-level BPE or SentencePiece token may carry the space before its word (``Ġ``,
        ``▁``) in its offsets, and byte-level BPE has words made of spaces only: spans never
        start or end with whitespace, and an entity of whitespace words only is dropped.
        """
        after_last = int(words.first_token[last + 1]) if last + 1 < len(words) else len(encoded)
        limit = int(encoded.offsets[after_last, 0]) if after_last < len(encoded) else len(text)
        end = extend_to_word_end(text, int(words.char_end[last]), limit)
        start = int(words.char_start[first])
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():  # a byte-level BPE word of only spaces
            end -= 1
        return start, end


def _keep_alternatives(entities: list[list[Entity]], k: int) -> list[list[Entity]]:
    """Each request of a shared pass gets the alternatives it asked for (``k``), no more."""
    return [
        [
            e if len(e.alternatives) <= k else replace(e, alternatives=e.alternatives[:k])
            for e in found
        ]
        for found in entities
    ]


def same_entities(served: NerPrediction, other: NerPrediction) -> bool:
    """Shadow agreement: every text has the same entities (text, label, start, end); scores
    and alternatives may differ."""

    def spans(p: NerPrediction) -> list[list[tuple[str, str, int, int]]]:
        return [[(e.text, e.label, e.start, e.end) for e in text] for text in p.entities]

    return spans(served) == spans(other)
