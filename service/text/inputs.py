"""Pack token windows into padded model inputs, in length buckets that spend little on padding.

A padded token costs an ONNX call as much as a real one, and a call costs a fixed overhead on top
(session dispatch, input building, small GEMMs that use the CPU less well). :func:`bucketed_batches`
picks the cut of the length-sorted rows into calls that minimises ``padded tokens + overhead x
calls``: one call for rows of similar lengths, several when lengths spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


# What one more ONNX call costs, in tokens' worth of compute. Measured on the default NER graph
# (2-core AMD EPYC, AVX2): a call is ~5 ms + ~0.8 ms per token at batch 1, and calls of fewer
# than ~64 tokens run GEMMs below their per-token speed; 16 tokens per call keeps the padded
# share of merged utterance batches at a few percent (README, "Benchmarks") without cutting a
# batch into many tiny calls.
CALL_OVERHEAD_TOKENS = 16


def bucketed_batches(
    lengths: Sequence[int],
    max_batch_size: int,
    max_batch_tokens: int | None = None,
    call_overhead_tokens: int = CALL_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Indices in length buckets: the cut of the sorted rows with the least ``padded tokens +
    call_overhead_tokens x calls``, every call within the size and token budgets.

    Exact dynamic programme over the sorted rows (a call is a run of consecutive rows, padded to
    its longest): O(rows x max_batch_size). A single row over the token budget still runs alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    width = [lengths[i] for i in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest plan for the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = width[j - 1]
        for i in range(j - 1, max(j - max_batch_size, 0) - 1, -1):  # last call = rows i..j-1
            rows = j - i
            if rows > 1 and max_batch_tokens and rows * longest > max_batch_tokens:
                break
            cost = best[i] + call_overhead_tokens + rows * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


def padding(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> tuple[int, int]:
    """(useful, padded) tokens of running ``batches`` over rows of ``lengths``."""
    useful = sum(lengths[i] for b in batches for i in b)
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return useful, total - useful


def build_inputs(
    rows: Sequence[IntArray], prefix: Sequence[int], suffix: Sequence[int], pad_id: int
) -> dict[str, IntArray]:
    """``input_ids``/``attention_mask``/``token_type_ids`` with special tokens around each row."""
    width = max(len(r) for r in rows) + len(prefix) + len(suffix)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids = np.concatenate((prefix, row, suffix)).astype(np.int64)
        input_ids[i, : len(ids)] = ids
        attention[i, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "token_type_ids": np.zeros_like(input_ids),
    }
