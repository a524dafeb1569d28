"""Every supported vectorizer option and classifier exports and serves ``predict_proba`` exactly
(within 1e-5; float64 pipelines within 1e-12), on BBC articles plus awkward texts."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from families.tfidf.convert import convert
from families.tfidf.export import TfidfExportOptions, export_tfidf
from families.tfidf.runtime import TfidfRuntime
from families.tfidf.spec import DataFile, TfidfManifest, VectorizerSpec
from families.tfidf.vectorizer import TfidfTransform
from service.settings import Settings
from tests.tfidf.corpus import bbc_articles

AWKWARD = [
    "Café naïve résumé — ÅNGSTRÖM ÉCOLE ﬁnance",
    "",
    "   \t\n ",
    "a",
    "market " * 3000,
    "日本語のテキスト 東京の株価",
    "Zürich's GDP rose 3% in Q4!! e-mail: a_b@c.com",
    "tab\tand\nnewlines   here\r\nand there",
]


def _texts() -> tuple[list[str], list[str], list[str]]:
    texts, topics = bbc_articles(20)
    return texts[::2], topics[::2], texts[1::2] + AWKWARD


def _word(**kw: object) -> TfidfVectorizer:
    return TfidfVectorizer(max_features=1500, **kw)


CASES: dict[str, tuple[Pipeline, str]] = {
    "multinomial-lr-char-l1-accents": (
        Pipeline(
            [
                (
                    "v",
                    _word(analyzer="char", ngram_range=(1, 3), strip_accents="unicode", norm="l1"),
                ),
                ("clf", LogisticRegression(max_iter=1000)),
            ]
        ),
        "topics",
    ),
    "sgd-stopwords-binary-ascii-cased": (
        Pipeline(
            [
                (
                    "v",
                    _word(
                        stop_words="english", binary=True, strip_accents="ascii", lowercase=False
                    ),
                ),
                ("clf", SGDClassifier(loss="log_loss", random_state=0)),
            ]
        ),
        "topics",
    ),
    "calibrated-linearsvc-sigmoid-float32-no-idf": (
        Pipeline(
            [
                ("v", _word(dtype=np.float32, use_idf=False)),
                ("clf", CalibratedClassifierCV(LinearSVC(), cv=3)),
            ]
        ),
        "topics",
    ),
    "calibrated-linearsvc-isotonic-no-norm-group-pattern": (
        Pipeline(
            [
                ("v", _word(norm=None, token_pattern=r"(?u)\b(\w\w+)\b", ngram_range=(2, 3))),
                ("clf", CalibratedClassifierCV(LinearSVC(), cv=3, method="isotonic")),
            ]
        ),
        "topics",
    ),
    "ovr-single-label-weighted-union": (
        Pipeline(
            [
                (
                    "f",
                    FeatureUnion(
                        [("w", _word()), ("c", _word(analyzer="char_wb", ngram_range=(3, 5)))],
                        transformer_weights={"w": 2.0, "c": 0.5},
                    ),
                ),
                ("clf", OneVsRestClassifier(LogisticRegression())),
            ]
        ),
        "topics",
    ),
    "binary-lr-sublinear": (
        Pipeline([("v", _word(sublinear_tf=True)), ("clf", LogisticRegression())]),
        "binary",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_supported_pipeline_serves_predict_proba(case: str, tmp_path: Path) -> None:
    train, topics, heldout = _texts()
    pipeline, target = CASES[case]
    y = topics if target == "topics" else [t == "sports" for t in topics]
    pipeline.fit(train, y)
    joblib.dump(pipeline, tmp_path / "p.joblib")
    (tmp_path / "h.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in heldout))
    out = export_tfidf(
        TfidfExportOptions(
            pipeline=tmp_path / "p.joblib", heldout=tmp_path / "h.jsonl", out=tmp_path / "b"
        )
    )
    manifest = TfidfManifest.model_validate_json((out / "bundle.json").read_text())
    assert manifest.head == "single-label"
    runtime = TfidfRuntime.from_bundle(manifest, out, None, Settings(bundles_dir=tmp_path))
    served = runtime.predict(heldout).probabilities
    expected = pipeline.predict_proba(heldout)
    float32 = "float32" in case
    assert np.abs(served - expected).max() <= (1e-5 if float32 else 1e-12)
    top = runtime.predict(heldout[:5]).labels
    assert [t[0].label for t in top] == [str(c) for c in pipeline.predict(heldout[:5])]


@pytest.mark.parametrize(
    "options",
    [
        {"analyzer": "word", "ngram_range": (1, 3)},
        {"analyzer": "char", "ngram_range": (1, 4)},
        {"analyzer": "char_wb", "ngram_range": (2, 5)},
        {"analyzer": "word", "strip_accents": "unicode", "stop_words": ["the", "a"]},
        {"analyzer": "word", "lowercase": False, "token_pattern": r"\S+"},
        {"analyzer": "char_wb", "strip_accents": "ascii", "ngram_range": (1, 1)},
    ],
)
def test_the_numpy_analyzer_yields_scikit_learns_ngrams(options: dict[str, object]) -> None:
    pipeline = Pipeline([("v", TfidfVectorizer(**options)), ("clf", LogisticRegression())])
    pipeline.fit([*AWKWARD, "x y", "y z"], [0, 1] * 5)
    converted = convert(pipeline).vectorizers[0]
    fake = DataFile(file="x", sha256="0" * 64)
    ours = TfidfTransform(VectorizerSpec(**converted.options, terms=fake), converted.terms, None)
    theirs = pipeline.named_steps["v"].build_analyzer()
    for text in AWKWARD:
        assert ours.analyze(text) == theirs(text)
