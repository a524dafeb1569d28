"""Pack token windows into padded model inputs, shortest first to keep padding small."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


def length_sorted_batches(lengths: Sequence[int], max_batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (sorted), at most ``max_batch_size`` each."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for begin in range(0, len(order), max_batch_size):
        yield order[begin : begin + max_batch_size]


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
