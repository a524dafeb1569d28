"""The TF-IDF runtime under the batcher's contract: requests merged into one run, large requests
cut into slices and merged back, top_k per request; the same probabilities every way."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from families.tfidf.export import TfidfExportOptions, export_tfidf
from families.tfidf.runtime import TfidfRuntime
from families.tfidf.spec import TfidfManifest
from service.runtime.family import RequestOptions
from service.settings import Settings
from tests.tfidf.corpus import bbc_articles


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> tuple[TfidfRuntime, list[str]]:
    root = tmp_path_factory.mktemp("tfidf-runtime")
    texts, topics = bbc_articles(16)
    pipeline = Pipeline(
        [("v", TfidfVectorizer(max_features=800)), ("clf", LogisticRegression(max_iter=500))]
    ).fit(texts[::2], topics[::2])
    joblib.dump(pipeline, root / "p.joblib")
    held = texts[1::2]
    (root / "h.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in held))
    out = export_tfidf(
        TfidfExportOptions(
            pipeline=root / "p.joblib",
            heldout=root / "h.jsonl",
            out=root / "b",
            abstain_threshold=0.5,
        )
    )
    manifest = TfidfManifest.model_validate_json((out / "bundle.json").read_text())
    return TfidfRuntime.from_bundle(manifest, out, None, Settings(bundles_dir=root)), held


def test_slices_merge_back_to_the_whole_requests_answer(
    runtime: tuple[TfidfRuntime, list[str]],
) -> None:
    rt, texts = runtime
    item = rt.prepare(texts[:10], RequestOptions())
    slices = item.split(3, 10**9)
    assert [len(s.documents) for s in slices] == [3, 3, 3, 1]
    merged = rt.merge(item, [rt.run_slice(s) for s in slices])
    whole = rt.run_prepared([item])[0]
    assert np.array_equal(merged.probabilities, whole.probabilities)
    assert merged.labels == whole.labels and merged.windows == [1] * 10


def test_requests_run_together_keep_their_own_answers_and_top_k(
    runtime: tuple[TfidfRuntime, list[str]],
) -> None:
    rt, texts = runtime
    a = rt.prepare(texts[:4], RequestOptions(top_k=None))
    b = rt.prepare(texts[4:7], RequestOptions(top_k=0))
    together = rt.run_prepared([a, b])
    alone = [rt.run_prepared([a])[0], rt.run_prepared([b])[0]]
    for joint, single in zip(together, alone, strict=True):
        assert np.array_equal(joint.probabilities, single.probabilities)
    assert all(found == [] for found in together[1].labels)


def test_single_label_abstains_below_its_threshold(
    runtime: tuple[TfidfRuntime, list[str]],
) -> None:
    rt, texts = runtime
    answer = rt.predict(texts)
    for probs, found in zip(answer.probabilities, answer.labels, strict=True):
        top = float(probs.max())
        assert (found == []) == (top < 0.5)
        if found:
            assert found[0].probability == top and found[0].threshold == 0.5
    assert rt.describe()["abstain_threshold"] == 0.5
