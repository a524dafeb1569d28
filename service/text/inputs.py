"""Pack token windows into padded model inputs, shortest first to keep padding small."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


def length_sorted_batches(
    lengths: Sequence[int], max_batch_size: int, max_batch_tokens: int | None = None
) -> Iterator[list[int]]:
    """Indices grouped by similar length (sorted), each batch within the size and token budget.

    The token cost of a batch is its size times its longest row (what padding makes it cost).
    A single row larger than the budget still forms its own batch: it is never dropped.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for i in order:
        cost = (len(batch) + 1) * lengths[i]
        if batch and (
            len(batch) >= max_batch_size or (max_batch_tokens and cost > max_batch_tokens)
        ):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


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
