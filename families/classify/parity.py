"""The classifier parity gate: ONNX probabilities vs the PyTorch (HF eager) model's.

The reference is HF's own module as trained (Longformer with ``global_attention_mask`` on CLS).
Probabilities are the served ones (sigmoid for multi-label, softmax for single-label). Lengths
include the window edges where sliding-window bugs show (511, 512, 513) and the maximum; each
length runs at batch 1 and in a padded batch of 3 with shorter neighbours.
"""

from __future__ import annotations

import time

import numpy as np

from export.errors import ParityError
from export.progress import Progress
from families.classify.model import Classifier
from families.classify.runtime import probabilities_of
from service.bundle import ParityReport
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer

DEFAULT_LENGTHS = (1, 100, 511, 512, 513, 1500, 4095)


def parity_lengths(max_length: int, requested: tuple[int, ...] | None = None) -> list[int]:
    """The requested lengths, or the defaults and the max (plus two inside short windows)."""
    lengths = set(requested or (*DEFAULT_LENGTHS, max_length))
    if requested is None and len({n for n in lengths if n <= max_length}) < 4:
        lengths |= {max_length // 2, max_length - 1}
    return sorted({n for n in lengths if 1 <= n <= max_length})


def _batch(
    lengths: list[int], vocab: int, tokenizer: TextTokenizer, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Random ids of each total length, CLS first and the tokenizer's end token last."""
    width = max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, vocab, size=n)
        if n > 1 and tokenizer.suffix_ids:
            ids[row, n - 1] = tokenizer.suffix_ids[-1]
        ids[row, 0] = tokenizer.prefix_ids[0]
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def check_parity(
    classifier: Classifier,
    session: InferenceSession,
    tokenizer: TextTokenizer,
    lengths: list[int],
    atol: float,
    progress: Progress,
    seed: int = 0,
) -> ParityReport:
    rng = np.random.default_rng(seed)
    vocab = int(classifier.model.config.vocab_size)
    details: list[dict[str, float | int | str]] = []
    for n in lengths:
        for shape in ([n], [n, max(1, n // 2), 1]):
            inputs = _batch(shape, vocab, tokenizer, rng)
            began = time.perf_counter()
            expected = probabilities_of(classifier.reference_logits(inputs), classifier.head)
            torch_s = time.perf_counter() - began
            began = time.perf_counter()
            got = probabilities_of(session.run(inputs).astype(np.float64), classifier.head)
            onnx_s = time.perf_counter() - began
            diff = float(np.abs(expected - got).max())
            details.append(
                {
                    "length": n,
                    "batch": len(shape),
                    "max_abs_diff": diff,
                    "torch_s": round(torch_s, 3),
                    "onnx_s": round(onnx_s, 3),
                }
            )
            progress.note(
                f"length {n:>5} batch {len(shape)}: max abs prob diff {diff:.1e} "
                f"(PyTorch {torch_s:.2f} s, ONNX Runtime {onnx_s:.2f} s)"
            )
    worst = max(float(d["max_abs_diff"]) for d in details)
    report = ParityReport(atol=atol, max_abs_diff=worst, cases=len(details), details=details)
    if worst > atol:
        raise ParityError(f"parity gate failed: max abs probability diff {worst:.3g} > {atol:g}")
    return report
