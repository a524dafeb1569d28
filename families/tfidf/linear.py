"""Linear scores and their probabilities, as scikit-learn's ``predict_proba`` computes them.

``scores = features @ weights + bias`` (float64, sparse rows gather weight rows). Each
:class:`~families.tfidf.spec.Member` turns its columns into class probabilities; the bundle's
probabilities are the members' mean (``CalibratedClassifierCV`` averages its folds' calibrated
classifiers the same way).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from families.tfidf.spec import (
    ConstantLink,
    IsotonicCalibrator,
    Link,
    LogisticLink,
    Member,
    SigmoidCalibrator,
)
from families.tfidf.vectorizer import SparseRows

FloatArray = NDArray[np.float64]


def expit(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -x))
    return out


def softmax(x: FloatArray) -> FloatArray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    out: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return out


def linear_scores(rows: SparseRows, weights: FloatArray, bias: FloatArray) -> FloatArray:
    """[documents, columns] = rows @ weights + bias, one document at a time (exact, sparse)."""
    documents = len(rows.indptr) - 1
    out = np.empty((documents, weights.shape[1]))
    for d in range(documents):
        span = slice(rows.indptr[d], rows.indptr[d + 1])
        out[d] = rows.data[span] @ weights[rows.indices[span]] + bias
    return out


def apply_link(link: Link, score: FloatArray) -> FloatArray:
    if isinstance(link, LogisticLink):
        return expit(score)
    if isinstance(link, SigmoidCalibrator):
        return expit(-(link.a * score + link.b))
    if isinstance(link, IsotonicCalibrator):
        x = np.asarray(link.x)
        y = np.asarray(link.y)
        out: FloatArray = np.interp(np.clip(score, x[0], x[-1]), x, y)
        return out
    assert isinstance(link, ConstantLink)
    return np.full_like(score, link.p)


def member_probabilities(member: Member, scores: FloatArray) -> FloatArray:
    """[documents, classes] probabilities of one member from all scorer columns."""
    mine = scores[:, member.columns]
    if member.combine == "softmax":
        return softmax(mine)
    if member.combine == "binary":
        p = apply_link(member.links[0], mine[:, 0])
        proba = np.stack([1.0 - p, p], axis=1)
    else:
        proba = np.stack(
            [apply_link(link, mine[:, k]) for k, link in enumerate(member.links)], axis=1
        )
        if member.combine == "normalize":
            total = proba.sum(axis=1, keepdims=True)
            fill = 1.0 / proba.shape[1] if member.on_zero_sum == "uniform" else 0.0
            proba = np.divide(proba, total, out=np.full_like(proba, fill), where=total != 0)
    if member.clip_above_one:
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba


def probabilities(members: list[Member], scores: FloatArray) -> FloatArray:
    """The members' mean probabilities [documents, classes]."""
    total = member_probabilities(members[0], scores)
    for member in members[1:]:
        total = total + member_probabilities(member, scores)
    out: FloatArray = total / len(members)
    return out
