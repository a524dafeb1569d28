"""A fitted scikit-learn pipeline → the TF-IDF bundle's data (export side; imports scikit-learn).

Supported: ``Pipeline([<features>, <classifier>])`` where ``<features>`` is a ``TfidfVectorizer``
or a ``FeatureUnion`` of them, and ``<classifier>`` is ``LogisticRegression``,
``SGDClassifier(loss="log_loss")``, ``OneVsRestClassifier`` of either (multi-label when fitted on
an indicator matrix), or ``CalibratedClassifierCV`` (sigmoid or isotonic) over ``LinearSVC``,
``LogisticRegression`` or ``SGDClassifier``. Anything else is refused with its step's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier, _ConstantPredictor
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from export.errors import ExportError
from families.tfidf.spec import (
    ConstantLink,
    IsotonicCalibrator,
    Link,
    LogisticLink,
    Member,
    SigmoidCalibrator,
    TfidfHead,
)

FloatArray = NDArray[np.float64]


class UnsupportedStep(ExportError):
    """A pipeline step the TF-IDF family cannot reproduce without scikit-learn."""


@dataclass
class VectorizerData:
    """One vectorizer's options (``VectorizerSpec`` fields but the files), terms and idf."""

    options: dict[str, Any]
    terms: list[str]
    idf: FloatArray | None


@dataclass
class Converted:
    head: TfidfHead
    estimator: str
    classes: list[str]
    vectorizers: list[VectorizerData]
    weights: FloatArray  # [features, columns]
    bias: FloatArray  # [columns]
    members: list[Member] = field(default_factory=list)


def _refuse(name: str, obj: Any, why: str) -> UnsupportedStep:
    return UnsupportedStep(f"pipeline step {name!r} ({type(obj).__name__}) is not supported: {why}")


def _vectorizer(name: str, vec: Any, weight: float) -> VectorizerData:
    if type(vec) is not TfidfVectorizer:
        raise _refuse(
            name, vec, "features must come from TfidfVectorizer (or a FeatureUnion of them)"
        )
    if vec.input != "content":
        raise _refuse(name, vec, f"input={vec.input!r}; only 'content' (the text itself)")
    if vec.preprocessor is not None or vec.tokenizer is not None or callable(vec.analyzer):
        raise _refuse(name, vec, "a custom preprocessor, tokenizer or analyzer is Python code")
    if vec.analyzer not in ("word", "char", "char_wb"):
        raise _refuse(name, vec, f"analyzer={vec.analyzer!r}")
    if vec.strip_accents not in (None, "unicode", "ascii"):
        raise _refuse(name, vec, f"strip_accents={vec.strip_accents!r} (a callable)")
    if vec.norm not in (None, "l1", "l2"):
        raise _refuse(name, vec, f"norm={vec.norm!r}")
    dtype = np.dtype(vec.dtype).name
    if dtype not in ("float64", "float32"):
        raise _refuse(name, vec, f"dtype={dtype}")
    if not hasattr(vec, "vocabulary_"):
        raise _refuse(name, vec, "it is not fitted")
    terms: list[str] = [""] * len(vec.vocabulary_)
    for term, column in vec.vocabulary_.items():
        terms[int(column)] = str(term)
    stop = vec.get_stop_words() if vec.analyzer == "word" else None
    low, high = vec.ngram_range
    options: dict[str, Any] = {
        "name": name,
        "analyzer": vec.analyzer,
        "ngram_range": (int(low), int(high)),
        "lowercase": bool(vec.lowercase),
        "strip_accents": vec.strip_accents,
        "token_pattern": vec.token_pattern,
        "stop_words": None if stop is None else sorted(stop),
        "binary": bool(vec.binary),
        "sublinear_tf": bool(vec.sublinear_tf),
        "norm": vec.norm,
        "dtype": dtype,
        "weight": float(weight),
        "features": len(terms),
    }
    idf = np.asarray(vec.idf_, dtype=np.float64) if vec.use_idf else None
    return VectorizerData(options, terms, idf)


def _features(name: str, step: Any) -> list[VectorizerData]:
    if isinstance(step, FeatureUnion):
        weights = step.transformer_weights or {}
        parts = []
        for part_name, part in step.transformer_list:
            if part == "drop":
                continue
            parts.append(_vectorizer(part_name, part, weights.get(part_name, 1.0)))
        if not parts:
            raise _refuse(name, step, "every transformer is dropped")
        return parts
    return [_vectorizer(name, step, 1.0)]


class _Columns:
    """Linear scorer columns collected from the classifier's estimators."""

    def __init__(self, features: int) -> None:
        self.features = features
        self.weights: list[FloatArray] = []
        self.bias: list[float] = []

    def add(self, coef: Any, intercept: Any) -> list[int]:
        coef = np.atleast_2d(np.asarray(coef.toarray() if hasattr(coef, "toarray") else coef))
        intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (coef.shape[0],))
        if coef.shape[1] != self.features:
            raise ExportError(f"coefficients have {coef.shape[1]} features, not {self.features}")
        start = len(self.bias)
        for row, b in zip(coef, intercept, strict=True):
            self.weights.append(np.asarray(row, dtype=np.float64))
            self.bias.append(float(b))
        return list(range(start, len(self.bias)))

    def zero(self) -> int:
        return self.add(np.zeros((1, self.features)), 0.0)[0]


def _linear(name: str, est: Any, columns: _Columns) -> list[int]:
    """Decision-function columns of a linear estimator."""
    if isinstance(est, SGDClassifier | LogisticRegression | LinearSVC) and hasattr(est, "coef_"):
        return columns.add(est.coef_, est.intercept_)
    raise _refuse(name, est, "expected a fitted LogisticRegression, SGDClassifier or LinearSVC")


def _probabilistic(name: str, est: Any) -> None:
    if isinstance(est, SGDClassifier) and est.loss != "log_loss":
        raise _refuse(name, est, f"loss={est.loss!r}; only 'log_loss' gives probabilities")
    if not isinstance(est, LogisticRegression | SGDClassifier):
        raise _refuse(
            name, est, "expected LogisticRegression or SGDClassifier(loss='log_loss') here"
        )


def _calibrator(name: str, calibrator: Any) -> Link:
    if isinstance(calibrator, _SigmoidCalibration):
        return SigmoidCalibrator(a=float(calibrator.a_), b=float(calibrator.b_))
    if isinstance(calibrator, IsotonicRegression):
        if not calibrator.increasing_ or calibrator.out_of_bounds != "clip":
            raise _refuse(name, calibrator, "only increasing isotonic calibrators that clip")
        return IsotonicCalibrator(
            x=[float(v) for v in calibrator.X_thresholds_],
            y=[float(v) for v in calibrator.y_thresholds_],
        )
    raise _refuse(name, calibrator, "calibration method must be 'sigmoid' or 'isotonic'")


def _classifier(name: str, clf: Any, columns: _Columns) -> tuple[TfidfHead, list[Member]]:
    if isinstance(clf, OneVsRestClassifier):
        links: list[Link] = []
        cols: list[int] = []
        for k, est in enumerate(clf.estimators_):
            if isinstance(est, _ConstantPredictor):
                cols.append(columns.zero())
                links.append(ConstantLink(p=float(np.ravel(est.y_)[0])))
                continue
            _probabilistic(f"{name}.estimators_[{k}]", est)
            if len(est.classes_) != 2:
                raise _refuse(name, est, "one-vs-rest estimators must be binary")
            cols.extend(_linear(f"{name}.estimators_[{k}]", est, columns))
            links.append(LogisticLink())
        if clf.multilabel_:
            if len(links) < 2:
                raise _refuse(name, clf, "a multi-label classifier needs at least two labels")
            return "multi-label", [Member(columns=cols, combine="independent", links=links)]
        if len(links) == 1:
            return "single-label", [Member(columns=cols, combine="binary", links=links)]
        member = Member(columns=cols, combine="normalize", links=links, on_zero_sum="zeros")
        return "single-label", [member]
    if isinstance(clf, CalibratedClassifierCV):
        if clf.method not in ("sigmoid", "isotonic"):
            raise _refuse(name, clf, f"method={clf.method!r}; only 'sigmoid' or 'isotonic'")
        members = []
        for i, calibrated in enumerate(clf.calibrated_classifiers_):
            inner = calibrated.estimator
            where = f"{name}.calibrated_classifiers_[{i}].estimator"
            if list(inner.classes_) != list(clf.classes_):
                raise _refuse(where, inner, "a fold did not see every class")
            cols = _linear(where, inner, columns)
            fold_links = [_calibrator(where, c) for c in calibrated.calibrators]
            combine = "binary" if len(clf.classes_) == 2 else "normalize"
            if len(fold_links) != len(cols):
                raise _refuse(where, inner, "one calibrator per decision column expected")
            members.append(
                Member(columns=cols, combine=combine, links=fold_links, clip_above_one=True)
            )
        return "single-label", members
    if isinstance(clf, LogisticRegression | SGDClassifier):
        _probabilistic(name, clf)
        cols = _linear(name, clf, columns)
        if len(clf.classes_) == 2:
            return "single-label", [Member(columns=cols, combine="binary", links=[LogisticLink()])]
        if isinstance(clf, LogisticRegression):
            return "single-label", [Member(columns=cols, combine="softmax")]
        links = [LogisticLink() for _ in cols]
        return "single-label", [Member(columns=cols, combine="normalize", links=links)]
    raise _refuse(
        name,
        clf,
        "the classifier must be LogisticRegression, SGDClassifier(loss='log_loss'), "
        "OneVsRestClassifier of those, or CalibratedClassifierCV",
    )


def convert(pipeline: Any) -> Converted:
    """The bundle data of a fitted pipeline; :class:`UnsupportedStep` names what it cannot serve."""
    if not isinstance(pipeline, Pipeline):
        raise _refuse("<file>", pipeline, "expected a fitted sklearn.pipeline.Pipeline")
    steps = [(n, s) for n, s in pipeline.steps if s not in (None, "passthrough")]
    if len(steps) < 2:
        names = [n for n, _ in pipeline.steps]
        raise UnsupportedStep(
            f"the pipeline must be <features> then <classifier>; its steps are {names}"
        )
    for name, step in steps[1:-1]:
        raise _refuse(name, step, "only a vectorizer step and a classifier step are supported")
    (feature_name, features), (clf_name, clf) = steps
    vectorizers = _features(feature_name, features)
    width = sum(v.options["features"] for v in vectorizers)
    columns = _Columns(width)
    head, members = _classifier(clf_name, clf, columns)
    classes = [str(c) for c in clf.classes_]
    return Converted(
        head=head,
        estimator=_describe(clf),
        classes=classes,
        vectorizers=vectorizers,
        weights=np.stack(columns.weights, axis=1),
        bias=np.asarray(columns.bias),
        members=members,
    )


def _describe(clf: Any) -> str:
    if isinstance(clf, OneVsRestClassifier):
        return f"OneVsRestClassifier({type(clf.estimator).__name__})"
    if isinstance(clf, CalibratedClassifierCV):
        inner = clf.calibrated_classifiers_[0].estimator
        return f"CalibratedClassifierCV({type(inner).__name__}, method={clf.method})"
    return type(clf).__name__
