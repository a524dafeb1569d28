"""A real scikit-learn TF-IDF pipeline (word + char n-grams, one-vs-rest logistic regression,
multi-label) trained on BBC News articles, exported with ``python -m export tfidf`` and served:
its probabilities equal ``predict_proba`` within 1e-5 on every held-out document."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MaxAbsScaler, MultiLabelBinarizer

from export.api import calibrate
from export.calibration.command import CalibrateOptions
from export.cli import main
from export.errors import ExportError, ParityError
from families.tfidf.export import TfidfExportOptions, export_tfidf
from families.tfidf.runtime import TfidfModel
from families.tfidf.spec import TfidfManifest
from service.app import create_app
from service.bundle import BundleError, verify_bundle
from service.review import review
from service.runtime.loader import load_runtime
from service.settings import Settings
from tests.tfidf.corpus import bbc_articles

ATOL = 1e-5


def _jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


class Trained:
    def __init__(self, root: Path) -> None:
        texts, topics = bbc_articles(60)  # 300 articles, 5 topics
        train = [i for i in range(len(texts)) if i % 3]
        held = [i for i in range(len(texts)) if i % 3 == 0]
        self.binarizer = MultiLabelBinarizer()
        y = self.binarizer.fit_transform([[topics[i]] for i in train])
        self.pipeline = Pipeline(
            [
                (
                    "features",
                    FeatureUnion(
                        [
                            (
                                "words",
                                TfidfVectorizer(
                                    ngram_range=(1, 2), sublinear_tf=True, max_features=3000
                                ),
                            ),
                            (
                                "chars",
                                TfidfVectorizer(
                                    analyzer="char_wb", ngram_range=(2, 4), max_features=3000
                                ),
                            ),
                        ]
                    ),
                ),
                ("clf", OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=1000))),
            ]
        ).fit([texts[i] for i in train], y)
        self.heldout = [texts[i] for i in held]
        self.truth = [topics[i] for i in held]
        self.root = root
        self.pickle = root / "pipeline.joblib"
        joblib.dump(self.pipeline, self.pickle)
        self.heldout_file = _jsonl(root / "heldout.jsonl", self.heldout)
        self.labels = root / "labels.txt"
        self.labels.write_text("\n".join(self.binarizer.classes_) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return Trained(tmp_path_factory.mktemp("tfidf"))


@pytest.fixture(scope="module")
def bundle(trained: Trained) -> Path:
    out = trained.root / "bundles" / "bbc-topics"
    argv = ["tfidf", "--pipeline", str(trained.pickle), "--heldout", str(trained.heldout_file)]
    argv += ["--out", str(out), "--labels", str(trained.labels)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def client(bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(bundles_dir=bundle.parent))) as test_client:
        deadline = time.monotonic() + 60
        while test_client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield test_client


def test_the_cli_bundle_records_a_passed_parity_gate_over_every_heldout_document(
    trained: Trained, bundle: Path
) -> None:
    manifest = TfidfManifest.model_validate_json((bundle / "bundle.json").read_text())
    assert manifest.task == "tfidf" and manifest.head == "multi-label"
    assert manifest.labels == list(trained.binarizer.classes_)
    assert manifest.parity.cases == len(trained.heldout) == 100
    assert manifest.parity.max_abs_diff <= ATOL
    assert [v.analyzer for v in manifest.tfidf.vectorizers] == ["word", "char_wb"]
    assert not list(bundle.glob("*.pkl")) and not list(bundle.glob("*.joblib"))


def test_served_probabilities_equal_predict_proba_on_every_heldout_document(
    trained: Trained, client: TestClient
) -> None:
    expected = trained.pipeline.predict_proba(trained.heldout)
    results = []
    # within the per-request limits (64 texts, 32,768 "tokens": non-zero features here)
    for start in range(0, len(trained.heldout), 20):
        texts = trained.heldout[start : start + 20]
        body = {"texts": texts, "model": "bbc-topics", "return_scores": True}
        response = client.post("/v1/classify", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["head"] == "multi-label"
        results += response.json()["results"]
    labels = list(trained.binarizer.classes_)
    for doc, (result, want) in enumerate(zip(results, expected, strict=True)):
        served = np.asarray([result["scores"][label] for label in labels])
        assert np.abs(served - want).max() <= ATOL, f"held-out document {doc}"
        predicted = {c["label"] for c in result["labels"]}
        assert predicted == {labels[k] for k in np.flatnonzero(want >= 0.5)}
        assert result["windows"] == 1  # read whole, however long
    # not a vacuous model: it recognises the held-out topics
    top = [labels[int(np.argmax(p))] for p in expected]
    assert np.mean([t == want for t, want in zip(top, trained.truth, strict=True)]) > 0.9


def test_models_route_describes_the_tfidf_bundle(client: TestClient) -> None:
    card = next(m for m in client.get("/v1/models").json()["models"] if m["name"] == "bbc-topics")
    assert card["task"] == "tfidf" and card["provider"] == "numpy"
    assert card["details"]["estimator"] == "OneVsRestClassifier(LogisticRegression)"
    assert card["details"]["features"] == 6000


def test_an_unsupported_step_is_refused_by_its_name(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = trained.heldout[:40]
    topics = trained.truth[:40]
    cases = {
        "scale": Pipeline(
            [
                ("tfidf", TfidfVectorizer(max_features=200)),
                ("scale", MaxAbsScaler()),
                ("clf", LogisticRegression()),
            ]
        ),
        "forest": Pipeline(
            [("tfidf", TfidfVectorizer(max_features=200)), ("forest", RandomForestClassifier(3))]
        ),
        "counts": Pipeline(
            [("counts", CountVectorizer(max_features=200)), ("clf", LogisticRegression())]
        ),
    }
    for step, pipeline in cases.items():
        pipeline.fit(texts, topics)
        joblib.dump(pipeline, tmp_path / f"{step}.joblib")
        out = tmp_path / step
        argv = ["tfidf", "--pipeline", str(tmp_path / f"{step}.joblib")]
        argv += ["--heldout", str(trained.heldout_file), "--out", str(out)]
        assert main(argv) == 1
        error = capsys.readouterr().err
        assert f"pipeline step {step!r}" in error and "not supported" in error, error
        assert not out.exists()


def test_the_parity_gate_refuses_and_names_the_documents_beyond_the_tolerance(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = TfidfModel.probabilities

    def off_on_document_7(self: TfidfModel, texts: list[str]) -> np.ndarray:
        probs = served(self, texts)
        probs[7, 0] += 2e-5
        return probs

    monkeypatch.setattr(TfidfModel, "probabilities", off_on_document_7)
    out = tmp_path / "refused"
    options = TfidfExportOptions(pipeline=trained.pickle, heldout=trained.heldout_file, out=out)
    with pytest.raises(ParityError, match=r"1 of 100 held-out documents .* #7 \(") as refused:
        export_tfidf(options)
    assert repr(trained.heldout[7][:60]) in str(refused.value)
    assert not out.exists()  # nothing half-written


def test_a_tampered_data_file_stops_the_load(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in bundle.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    weights = np.load(copy / "weights.npy")
    weights[0, 0] += 1.0
    np.save(copy / "weights.npy", weights)
    manifest = TfidfManifest.model_validate_json((copy / "bundle.json").read_text())
    with pytest.raises(BundleError, match=r"weights\.npy: sha256 .* does not match"):
        TfidfModel.load(manifest, copy)


def test_serving_a_tfidf_bundle_imports_neither_sklearn_nor_torch(bundle: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from families.tfidf.runtime import TfidfModel\n"
        "from families.tfidf.spec import TfidfManifest\n"
        "import service.app\n"
        f"b = Path({str(bundle)!r})\n"
        "m = TfidfManifest.model_validate_json((b / 'bundle.json').read_text())\n"
        "TfidfModel.load(m, b).probabilities(['a market rally'])\n"
        "bad = [n for n in ('sklearn', 'torch', 'scipy', 'joblib') if n in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_calibrate_gives_a_tfidf_bundle_thresholds_automation_and_review(
    trained: Trained, bundle: Path, tmp_path: Path
) -> None:
    """``python -m export calibrate`` on a TF-IDF bundle: the classifier calibration on its
    served probabilities; the answers then carry the review rule of its automation."""
    copy = tmp_path / "bbc-topics"
    shutil.copytree(bundle, copy)
    validation = tmp_path / "validation.jsonl"
    validation.write_text(
        "".join(
            json.dumps({"text": t, "labels": [y]}) + "\n"
            for t, y in zip(trained.heldout, trained.truth, strict=True)
        )
    )
    argv = ["calibrate", "--bundle", str(copy), "--data", str(validation), "--no-plots"]
    argv += ["--bootstrap", "200", "--automation-f1", "0.8"]
    assert main(argv) == 0
    manifest = verify_bundle(copy)
    assert isinstance(manifest, TfidfManifest) and manifest.schema_version == 5
    calibration = manifest.tfidf.calibration
    assert calibration is not None and calibration.method in {"at_0.5", "global", "per_class"}
    automation = manifest.automation
    assert automation is not None and automation.target_f1 == 0.8
    assert automation.target_miss_rate == pytest.approx(0.05)
    assert [c.label for c in automation.classes] == list(trained.binarizer.classes_)
    report = json.loads((copy / "calibration_report.json").read_text())
    assert report["automation"]["review_rate"] == automation.review_rate
    assert "Per-class automation" in (copy / "calibration_report.md").read_text()
    # the thresholds shipped are the ones served, and the answers carry the documented review
    model = TfidfModel.load(manifest, copy)
    probs = model.probabilities(trained.heldout)
    runtime = load_runtime(copy).runtime
    answer = runtime.predict(trained.heldout)
    thresholds = np.asarray(manifest.tfidf.thresholds)
    expected = review(
        probs,
        manifest.labels,
        thresholds,
        [c.automate for c in automation.classes],
        [c.band_low for c in automation.classes],
        [c.band_high for c in automation.classes],
    )
    assert answer.reviews == expected
    for row, labels in zip(probs, answer.labels, strict=True):
        assert {s.label for s in labels} == {
            manifest.labels[c] for c in np.flatnonzero(row >= thresholds)
        }
    assert sum(r.review for r in expected) / len(expected) == pytest.approx(automation.review_rate)


def test_calibrate_refuses_a_single_label_tfidf_bundle(tmp_path: Path) -> None:
    texts, topics = bbc_articles(12)
    single = Pipeline(
        [("words", TfidfVectorizer()), ("clf", LogisticRegression(max_iter=500))]
    ).fit(texts, topics)
    joblib.dump(single, tmp_path / "single.joblib")
    out = tmp_path / "single"
    export_tfidf(
        TfidfExportOptions(
            pipeline=tmp_path / "single.joblib",
            heldout=_jsonl(tmp_path / "held.jsonl", texts[:5]),
            out=out,
        )
    )
    validation = tmp_path / "val.jsonl"
    validation.write_text(
        "".join(
            json.dumps({"text": t, "labels": [y]}) + "\n"
            for t, y in zip(texts, topics, strict=True)
        )
    )
    with pytest.raises(ExportError, match="single-label TF-IDF bundle"):
        calibrate(CalibrateOptions(bundle=out, data=validation, no_plots=True))
