"""The accuracy gate: a quantized graph must decide like the fp32 ONNX graph it came from.

NER: the served decoder (:class:`families.ner.decoding.WordDecoder`) runs on both graphs' scores;
the gated figure is the fraction of words whose tag agrees, the worse of two runs (each text
alone, and in length-sorted batches of 32). Postures: window probabilities are aggregated per
document as served; multi-label decisions are thresholded at 0.5 and the gated figure is the
fraction of (document, label) decisions that agree; single-label, the fraction of documents whose
top class agrees. Both also report the fraction of texts decided
identically and the max abs output difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from export.errors import ParityError
from families.classify.runtime import aggregate, probabilities_of
from families.ner.decoding import WordDecoder
from service.runtime.batch_loop import run_rows
from service.runtime.cpu_features import current_cpu
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer, first_subtokens
from service.text.windows import plan_windows

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


class AccuracyGateError(ParityError):
    """The quantized graph disagrees with the fp32 graph more than ``--min-agreement`` allows."""


@dataclass(frozen=True)
class Agreement:
    agreement: float  # words (NER) or (document, label) decisions (postures) that agree
    exact_match: float  # texts decided identically
    max_abs_diff: float  # emissions (NER) or probabilities (postures) vs the fp32 graph
    texts: int
    unit: str  # what ``agreement`` counts, for messages

    def enforce(self, min_agreement: float, context: str = "") -> None:
        """Raise :class:`AccuracyGateError` below ``min_agreement``; ``context`` is appended."""
        if self.agreement < min_agreement:
            raise AccuracyGateError(
                f"accuracy gate failed: {self.agreement:.4f} of {self.unit} agree with the fp32 "
                f"graph (required {min_agreement:g}); {self.exact_match:.4f} of {self.texts} "
                f"texts identical, max abs diff vs fp32 {self.max_abs_diff:.3g}, on "
                f"{current_cpu().describe()}{context}; the bundle was not written"
            )


def _both(
    sessions: tuple[InferenceSession, InferenceSession],
    rows: list[IntArray],
    tokenizer: TextTokenizer,
    pad_id: int,
    batch_size: int,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Each row (content ids) through both graphs, in the service's length-sorted batches."""
    ref = run_rows(sessions[0], rows, tokenizer, pad_id, batch_size)
    got = run_rows(sessions[1], rows, tokenizer, pad_id, batch_size)
    return ref, got


def ner_agreement(
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    decoder: WordDecoder,
    texts: list[str],
    capacity: int,
    pad_id: int = 0,
) -> Agreement:
    """Word-tag agreement of served decoding; texts are cut to one window of tokens."""
    encoded = [e for e in tokenizer.encode_batch(texts) if len(e)]
    rows = [e.ids[:capacity] for e in encoded]
    offset = len(tokenizer.prefix_ids)
    positions = [first_subtokens(e.word_ids[:capacity]) + offset for e in encoded]
    live = [i for i, p in enumerate(positions) if len(p)]
    results, worst = [], 0.0
    # Dynamic INT8 scales activations per tensor, i.e. over the whole batch: a text's tags can
    # depend on its batch neighbours. Gate both ways the service may run it (alone, batched).
    for batch_size in (1, 32):
        ref, got = _both((fp32, variant), rows, tokenizer, pad_id, batch_size)
        for i, n in enumerate(len(r) for r in rows):
            worst = max(
                worst,
                float(np.abs(ref[i][offset : offset + n] - got[i][offset : offset + n]).max()),
            )
        tags = [
            decoder.decode(
                [scores[i][positions[i]] for i in live], [scores[i][0] for i in live], False
            )
            for scores in (ref, got)
        ]
        agree = words = same = 0
        for slot in range(len(live)):
            a, b = tags[0].word_tags(slot), tags[1].word_tags(slot)
            matches = int((a == b).sum())
            agree, words, same = agree + matches, words + len(a), same + (matches == len(a))
        results.append((agree / max(words, 1), same / max(len(rows), 1)))
    agreement, exact = min(r[0] for r in results), min(r[1] for r in results)
    return Agreement(agreement, exact, worst, len(rows), "words (worst of batch 1 and 32)")


def classifier_agreement(
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    documents: list[IntArray],
    head: str,
    capacity: int,
    stride: int,
    aggregation: str,
    pad_id: int = 0,
) -> Agreement:
    """Decision agreement after served windowing and aggregation: multi-label, (document, label)
    decisions at threshold 0.5; single-label, each document's top class."""
    rows, owner = [], []
    for doc, ids in enumerate(documents):
        for w in plan_windows(len(ids), capacity, stride):
            rows.append(ids[w.start : w.end])
            owner.append(doc)
    # Batch 1: a few 4,096-token windows of a base model already take seconds each.
    ref, got = _both((fp32, variant), rows, tokenizer, pad_id, 1)
    owners = np.asarray(owner)
    docs = [
        aggregate(probabilities_of(np.stack(out), head), owners, len(documents), aggregation)  # type: ignore[arg-type]
        for out in (ref, got)
    ]
    worst = float(np.abs(docs[0] - docs[1]).max())
    if head == "single-label":
        same = docs[0].argmax(axis=1) == docs[1].argmax(axis=1)
        rate = float(same.mean())
        return Agreement(rate, rate, worst, len(documents), "documents' top classes")
    decisions = [d >= 0.5 for d in docs]
    agree = decisions[0] == decisions[1]
    return Agreement(
        float(agree.mean()),
        float(agree.all(axis=1).mean()),
        worst,
        len(documents),
        "(document, label) decisions",
    )
