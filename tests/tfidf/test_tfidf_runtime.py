"""The TF-IDF runtime under the batcher's contract: requests merged into one run, large requests
cut into slices and merged back, top_k per request; the same probabilities every way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from families.tfidf.export import TfidfExportOptions, export_tfidf
from families.tfidf.runtime import TfidfRuntime
from families.tfidf.spec import TfidfManifest
from service.bundle import BundleError, verify_bundle
from service.runtime.family import RequestOptions
from service.settings import Settings
from tests.tfidf.corpus import bbc_articles


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
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
    return out, held


@pytest.fixture(scope="module")
def runtime(exported: tuple[Path, list[str]]) -> tuple[TfidfRuntime, list[str]]:
    out, held = exported
    manifest = TfidfManifest.model_validate_json((out / "bundle.json").read_text())
    settings = Settings(bundles_dir=out.parent)
    return TfidfRuntime.from_bundle(manifest, out, None, settings), held


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


def test_a_data_file_outside_the_bundle_is_refused_like_any_file_a_manifest_names(
    exported: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """verify_bundle checks every file of ``bundle_files()`` (here terms, idf, weights, bias)
    with the same inside-the-bundle rule as an ONNX graph, before reading any of them."""
    bundle = tmp_path / "b"
    shutil.copytree(exported[0], bundle)
    assert verify_bundle(bundle).task == "tfidf"
    outside = tmp_path / "weights.npy"
    weights = json.loads((bundle / "bundle.json").read_text())["tfidf"]["linear"]["weights"]
    (bundle / weights["file"]).rename(outside)
    (bundle / weights["file"]).symlink_to(outside)  # same bytes, same sha256, but outside
    with pytest.raises(BundleError, match="resolves outside the bundle directory"):
        verify_bundle(bundle)
    (bundle / weights["file"]).unlink()
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["tfidf"]["linear"]["weights"]["file"] = ".."
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"tfidf data file '\.\.' has a '\.\.' part"):
        verify_bundle(bundle)
