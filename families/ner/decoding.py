"""One decoding definition for every NER head: word scores → constrained Viterbi → tags + scores.

A word's score vector is the head's output at its first sub-token: CRF emissions (CRF heads) or
log-softmax (softmax heads; the graph itself ends in ``log_softmax``). Viterbi then runs with the
CRF's start/end/transition scores, or zeros for softmax heads, plus the tag scheme's constraints.
With ``crf_positions == "cls+words"`` the CRF runs over ``[CLS] + words`` as in training (the CLS
row's tag held to ``O``) and the CLS tag is dropped. The service, the export parity gate and the
INT8 gate all decode through :class:`WordDecoder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from families.ner.crf import (
    CrfParams,
    ForwardBackward,
    forward_backward,
    segment_probability,
    viterbi_decode,
)
from families.ner.spec import NerSpec
from families.ner.tagging import FORBIDDEN, TagScheme

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Decoded:
    """Padded decoder inputs and outputs; ``lead`` rows (the CLS position) precede the words."""

    emissions: FloatArray  # [texts, lead + words, tags]
    lengths: IntArray  # lead + words, per text
    tags: IntArray  # [texts, lead + words]
    lead: int
    fb: ForwardBackward | None = None

    def word_tags(self, row: int) -> IntArray:
        tags: IntArray = self.tags[row, self.lead : self.lengths[row]]
        return tags


@dataclass(frozen=True)
class WordDecoder:
    scheme: TagScheme
    crf: CrfParams  # as served: the head's scores plus the scheme's penalties (if constrained)
    cls_tag: int | None = None  # the tag the CLS position is held to (cls+words layout)

    @classmethod
    def from_spec(cls, spec: NerSpec, labels: list[str]) -> WordDecoder:
        scheme = TagScheme.parse(labels, spec.tag_scheme)
        if spec.crf is None:
            crf = CrfParams.zeros(len(labels))
        else:
            crf = CrfParams.from_lists(spec.crf.start, spec.crf.end, spec.crf.transitions)
        if spec.constrain_transitions:
            crf = crf.with_penalties(scheme.penalties())
        cls_tag = labels.index("O") if spec.crf_positions == "cls+words" else None
        return cls(scheme, crf, cls_tag)

    @property
    def lead(self) -> int:
        return 0 if self.cls_tag is None else 1

    def cls_row(self, cls_scores: FloatArray) -> FloatArray:
        """The CLS position's scores with every tag but ``cls_tag`` forbidden."""
        held = np.full(self.crf.num_tags, FORBIDDEN)
        held[self.cls_tag] = 0.0
        row: FloatArray = cls_scores + held
        return row

    def sequences(
        self, word_scores: list[FloatArray], cls_scores: list[FloatArray] | None = None
    ) -> tuple[FloatArray, IntArray]:
        """Padded ``[texts, lead + words, tags]`` inputs of the decoder and their lengths."""
        lead = self.lead
        if lead and (cls_scores is None or len(cls_scores) != len(word_scores)):
            raise ValueError("the cls+words layout needs the CLS scores of every text")
        lengths = np.asarray([lead + len(w) for w in word_scores], dtype=np.int64)
        emissions = np.zeros((len(word_scores), int(lengths.max(initial=1)), self.crf.num_tags))
        for row, scores in enumerate(word_scores):
            emissions[row, lead : lengths[row]] = scores
            if lead:
                assert cls_scores is not None
                emissions[row, 0] = self.cls_row(cls_scores[row])
        return emissions, lengths

    def decode(
        self,
        word_scores: list[FloatArray],
        cls_scores: list[FloatArray] | None = None,
        marginals: bool = True,
    ) -> Decoded:
        """Viterbi (and forward-backward for entity scores) over texts with at least one word."""
        emissions, lengths = self.sequences(word_scores, cls_scores)
        tags = viterbi_decode(emissions, lengths, self.crf)
        fb = forward_backward(emissions, lengths, self.crf) if marginals else None
        return Decoded(emissions, lengths, tags, self.lead, fb)

    def with_marginals(self, decoded: Decoded) -> Decoded:
        """``decoded`` with its forward-backward pass (as ``decode`` computes it), run only when
        some entity needs a score: a pass with no entities found skips it."""
        if decoded.fb is not None:
            return decoded
        fb = forward_backward(decoded.emissions, decoded.lengths, self.crf)
        return Decoded(decoded.emissions, decoded.lengths, decoded.tags, decoded.lead, fb)

    def entity_scores(self, decoded: Decoded, entities: list[tuple[int, int, int]]) -> list[float]:
        """``entity_score`` of many ``(row, first word, last word)`` at once: one numpy pass per
        entity length instead of a dozen small calls per entity. The same additions in the same
        order (a row-wise sum is the same pairwise sum as a 1-D one), so the same floats."""
        if not entities:
            return []
        assert decoded.fb is not None
        fb, scores = decoded.fb, np.empty(len(entities))
        spec = np.asarray(entities, dtype=np.int64)
        rows, firsts = spec[:, 0], spec[:, 1] + decoded.lead
        sizes = spec[:, 2] - spec[:, 1] + 1
        for size in np.unique(sizes):
            pick = np.flatnonzero(sizes == size)
            row, first = rows[pick], firsts[pick]
            pos = first[:, None] + np.arange(size)  # [entities, size]
            seg = decoded.tags[row[:, None], pos]
            inner = self.crf.transitions[seg[:, :-1], seg[:, 1:]].sum(axis=1)
            inner += decoded.emissions[row[:, None], pos[:, 1:], seg[:, 1:]].sum(axis=1)
            log_p = fb.alpha[row, first, seg[:, 0]] + inner + fb.beta[row, pos[:, -1], seg[:, -1]]
            shifted = log_p - fb.log_partition[row]
            scores[pick] = np.exp(np.where(shifted < 0.0, shifted, 0.0))  # min(0, x) as before
        return [float(x) for x in scores]

    def entity_score(self, decoded: Decoded, row: int, first: int, last: int) -> float:
        """P(words first..last carry exactly the decoded tags), from forward-backward marginals."""
        assert decoded.fb is not None
        lead = decoded.lead
        return segment_probability(
            decoded.fb,
            decoded.emissions,
            self.crf,
            row,
            decoded.tags[row],
            first + lead,
            last + lead,
        )
