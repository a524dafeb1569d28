"""The accuracy gate: a quantized graph must decide like the fp32 ONNX graph it came from.

NER: the served decoder (constrained numpy Viterbi over first-sub-token emissions) runs on both
graphs' emissions; the gated figure is the fraction of words whose tag agrees, the worse of two
runs (each text alone, and in length-sorted batches of 32). Postures: window
probabilities are aggregated per document as served and thresholded at the export's thresholds;
the gated figure is the fraction of (document, label) decisions that agree. Both also report the
fraction of texts decided identically and the max abs output difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from export.errors import ParityError
from service.ner.crf import CrfParams, viterbi_decode
from service.postures.pipeline import sigmoid
from service.runtime.cpu_features import current_cpu
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs, length_sorted_batches
from service.text.tokenizer import TextTokenizer, words_of
from service.text.windows import plan_windows

IntArray = NDArray[np.int64]


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


def _run_rows(
    sessions: tuple[InferenceSession, InferenceSession],
    rows: list[IntArray],
    tokenizer: TextTokenizer,
    pad_id: int,
    batch_size: int,
    on_batch: Callable[[list[int], NDArray[np.float32], NDArray[np.float32]], None],
) -> None:
    """Run each row (content ids) through both graphs, in length-sorted padded batches."""
    for batch in length_sorted_batches([len(r) for r in rows], batch_size):
        inputs = build_inputs(
            [rows[i] for i in batch], tokenizer.prefix_ids, tokenizer.suffix_ids, pad_id
        )
        on_batch(batch, sessions[0].run(inputs), sessions[1].run(inputs))


def ner_agreement(
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    crf: CrfParams,
    texts: list[str],
    capacity: int,
    pad_id: int = 0,
) -> Agreement:
    """Word-tag agreement of served Viterbi decoding; texts are cut to one window of tokens."""
    encoded = [e for e in tokenizer.encode_batch(texts) if len(e)]
    rows = [e.ids[:capacity] for e in encoded]
    offset = len(tokenizer.prefix_ids)
    agree = words = same = 0
    worst = 0.0

    def compare(batch: list[int], ref: NDArray[np.float32], got: NDArray[np.float32]) -> None:
        nonlocal agree, words, same, worst
        for slot, i in enumerate(batch):
            first = words_of(encoded[i]).first_token
            positions = first[first < capacity] + offset
            n = len(rows[i])
            worst = max(
                worst,
                float(
                    np.abs(ref[slot, offset : offset + n] - got[slot, offset : offset + n]).max()
                ),
            )
            if len(positions) == 0:
                continue
            lengths = np.asarray([len(positions)])
            a = viterbi_decode(ref[slot, positions][None].astype(np.float64), lengths, crf)[0]
            b = viterbi_decode(got[slot, positions][None].astype(np.float64), lengths, crf)[0]
            matches = int((a == b).sum())
            agree, words, same = agree + matches, words + len(a), same + (matches == len(a))

    # Dynamic INT8 scales activations per tensor, i.e. over the whole batch: a text's tags can
    # depend on its batch neighbours. Gate both ways the service may run it (alone, batched).
    results = []
    for batch_size in (1, 32):
        agree = words = same = 0
        _run_rows((fp32, variant), rows, tokenizer, pad_id, batch_size, compare)
        results.append((agree / max(words, 1), same / max(len(rows), 1)))
    agreement, exact = min(r[0] for r in results), min(r[1] for r in results)
    return Agreement(agreement, exact, worst, len(rows), "words (worst of batch 1 and 32)")


def posture_agreement(
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    documents: list[IntArray],
    thresholds: NDArray[np.float64],
    capacity: int,
    stride: int,
    aggregation: str,
    pad_id: int = 0,
) -> Agreement:
    """Label-decision agreement after served windowing, aggregation and thresholds."""
    rows, owner = [], []
    for doc, ids in enumerate(documents):
        for w in plan_windows(len(ids), capacity, stride):
            rows.append(ids[w.start : w.end])
            owner.append(doc)
    probs = np.empty((2, len(rows), len(thresholds)))

    def keep(batch: list[int], ref: NDArray[np.float32], got: NDArray[np.float32]) -> None:
        probs[0, batch] = sigmoid(ref.astype(np.float64))
        probs[1, batch] = sigmoid(got.astype(np.float64))

    # Batch 1: a few 4,096-token windows of a base model already take seconds each.
    _run_rows((fp32, variant), rows, tokenizer, pad_id, 1, keep)
    owners = np.asarray(owner)
    combine = np.max if aggregation == "max" else np.mean
    docs = np.stack([combine(probs[:, owners == d], axis=1) for d in range(len(documents))], axis=1)
    decisions = docs >= thresholds
    agree = decisions[0] == decisions[1]
    worst = float(np.abs(docs[0] - docs[1]).max())
    return Agreement(
        float(agree.mean()),
        float(agree.all(axis=1).mean()),
        worst,
        len(documents),
        "(document, label) decisions",
    )
