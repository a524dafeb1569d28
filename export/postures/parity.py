"""The posture parity gate: ONNX (blocked attention) vs HF Longformer probabilities.

HF runs with ``global_attention_mask`` on the CLS token, as the model was trained. Lengths include
the window edges where sliding-window bugs show (511, 512, 513) and the maximum; each length runs
at batch 1 and in a padded batch of 3 with shorter neighbours.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from transformers import LongformerForSequenceClassification

from export.errors import ParityError
from export.progress import Progress
from service.bundle import ParityReport
from service.postures.pipeline import sigmoid
from service.runtime.session import InferenceSession

DEFAULT_LENGTHS = (1, 100, 511, 512, 513, 1500, 4095)


def parity_lengths(max_length: int, requested: tuple[int, ...] | None = None) -> list[int]:
    lengths = requested or (*DEFAULT_LENGTHS, max_length)
    return sorted({n for n in lengths if 1 <= n <= max_length})


def _batch(
    lengths: list[int], vocab: int, cls_id: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    width = max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, vocab, size=n)
        ids[row, 0] = cls_id
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _reference(
    model: LongformerForSequenceClassification, inputs: dict[str, np.ndarray]
) -> np.ndarray:
    ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
    global_mask = torch.zeros_like(ids)
    global_mask[:, 0] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, global_attention_mask=global_mask).logits
    return sigmoid(logits.double().numpy())


def check_parity(
    model: LongformerForSequenceClassification,
    session: InferenceSession,
    lengths: list[int],
    cls_id: int,
    atol: float,
    progress: Progress,
    seed: int = 0,
) -> ParityReport:
    rng = np.random.default_rng(seed)
    vocab = int(model.config.vocab_size)
    details: list[dict[str, float | int | str]] = []
    for n in lengths:
        for shape in ([n], [n, max(1, n // 2), 1]):
            inputs = _batch(shape, vocab, cls_id, rng)
            began = time.perf_counter()
            expected = _reference(model, inputs)
            torch_s = time.perf_counter() - began
            began = time.perf_counter()
            got = sigmoid(session.run(inputs).astype(np.float64))
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
