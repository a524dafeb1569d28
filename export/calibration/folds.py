"""Stratified k-fold assignment for multi-label (or one-hot single-label) data, seeded.

Iterative stratification (Sechidis, Tsoumakas & Vlahavas, 2011): the rarest remaining label is
dealt out first, each of its documents going to the fold that still wants most of that label, so
every fold holds positives of every class that has at least k of them.
"""

from __future__ import annotations

import numpy as np

from export.calibration.cuts import BoolArray, IntArray


def stratified_folds(truth: BoolArray, k: int, seed: int) -> IntArray:
    """Fold number (0..k-1) of each row of ``truth`` [docs, classes]; same seed, same folds."""
    truth = np.asarray(truth, dtype=bool)
    n = truth.shape[0]
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= folds <= documents, got {k} folds for {n} documents")
    rng = np.random.default_rng(seed)
    fold = np.full(n, -1, dtype=np.int64)
    wanted_size = np.full(k, n / k)
    wanted = np.tile(truth.sum(axis=0) / k, (k, 1))  # [fold, class]

    def place(row: int, scores: np.ndarray) -> None:
        best = np.flatnonzero(scores == scores.max())
        if best.size > 1:
            sizes = wanted_size[best]
            best = best[sizes == sizes.max()]
        chosen = int(best[0] if best.size == 1 else rng.choice(best))
        fold[row] = chosen
        wanted[chosen] -= truth[row]
        wanted_size[chosen] -= 1

    while True:
        open_rows = fold < 0
        remaining = truth[open_rows].sum(axis=0)
        if not remaining.any():
            break
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for row in rng.permutation(np.flatnonzero(open_rows & truth[:, label])):
            place(int(row), wanted[:, label])
    for row in rng.permutation(np.flatnonzero(fold < 0)):
        place(int(row), wanted_size)
    return fold
