"""The one ONNX batch loop: content rows → padded length buckets → one output per row.

Every path that runs a graph over token windows uses it: the task runtimes, the export parity and
INT8 gates, calibration. Rows never change results by sharing a batch (fp32), so callers may merge
any rows they like; the loop cuts them into length buckets (``bucketed_batches``) so that
almost no compute goes to padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from service.runtime.session import InferenceSession
from service.text.inputs import CALL_OVERHEAD_TOKENS as CALL_OVERHEAD_TOKENS
from service.text.inputs import bucketed_batches, build_inputs
from service.text.tokenizer import TextTokenizer

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def run_rows(
    session: InferenceSession,
    rows: Sequence[IntArray],
    tokenizer: TextTokenizer,
    pad_id: int,
    max_batch_size: int,
    max_batch_tokens: int | None = None,
    call_overhead_tokens: int | None = None,
) -> list[FloatArray]:
    """Each row's output: ``[special + content tokens, K]`` (per-token graphs) or ``[K]``.

    Rows are content ids; the tokenizer's special tokens go around each. Per-token outputs are cut
    to the row's own length, so padding never leaks into a caller's scores. The rows run in length
    buckets priced at ``call_overhead_tokens`` per call (default ``CALL_OVERHEAD_TOKENS``); a huge
    value gives the plan before buckets: as few calls as the budgets allow.
    """
    results: list[FloatArray] = [np.empty(0)] * len(rows)
    special = tokenizer.num_special_tokens
    lengths = [len(r) + special for r in rows]
    overhead = CALL_OVERHEAD_TOKENS if call_overhead_tokens is None else call_overhead_tokens
    plan = bucketed_batches(lengths, max_batch_size, max_batch_tokens, overhead)
    for batch in plan:
        inputs = build_inputs(
            [rows[i] for i in batch], tokenizer.prefix_ids, tokenizer.suffix_ids, pad_id
        )
        out = session.run(inputs).astype(np.float64)
        for slot, i in enumerate(batch):
            results[i] = out[slot, : lengths[i]] if out.ndim == 3 else out[slot]
    return results
