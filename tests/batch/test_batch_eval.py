"""``--eval``: seqeval's entity semantics, the training build's figures on the default NER bundle,
the posture build's micro/macro F1, and sane bootstrap intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from families.ner.spans import bio_entities as _bio_entities
from service.batch.__main__ import main
from service.batch.evaluate import Tally, evaluate

ROOT = Path(__file__).resolve().parents[2]
ROW = r"^\s*(\S+(?: avg)?)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+(\d+)$"  # seqeval report: name P R F1 n
TAGS = st.sampled_from(["O", "B-X", "I-X", "B-Y", "I-Y"])


@settings(max_examples=300, deadline=None)
@given(st.lists(TAGS, max_size=12))
def test_entities_are_read_from_tags_as_seqeval_does(tags: list[str]) -> None:
    assert _bio_entities(tags) == set(get_entities(tags))


def test_bootstrap_intervals_hold_the_estimate_and_are_reproducible() -> None:
    tally = Tally()
    rng = np.random.default_rng(3)
    for _ in range(200):
        gold = {(str(c), 0, 0) for c in range(4) if rng.random() < 0.4}
        predicted = {u for u in gold if rng.random() < 0.8} | {("0", 0, 0)}
        tally.add(gold, predicted)
    first, second = evaluate(tally), evaluate(tally)
    assert first == second
    for kind in ("micro", "macro"):
        low, high = first[f"{kind}_f1_ci"]
        assert low < first[f"{kind}_f1"] < high and high - low < 0.2
    perfect = Tally()
    perfect.add({("a", 0, 0)}, {("a", 0, 0)})
    assert evaluate(perfect)["micro_f1_ci"] == [1.0, 1.0]


@pytest.fixture(scope="module")
def default_ner_bundle() -> Path:
    """The default NER bundle alone (built once under .cache, as make run does)."""
    from default_models.build import build_ner

    return build_ner(ROOT / ".cache")


def test_ner_eval_equals_the_training_builds_evaluation(
    default_ner_bundle: Path, tmp_path: Path
) -> None:
    from default_models.evaluation import evaluate_bundle
    from default_models.food_corpus import generate_splits, write_jsonl

    test = generate_splits()["test"]
    data = tmp_path / "test.jsonl"
    write_jsonl(test, data)  # no ids: the line number is the id
    out = tmp_path / "scored.jsonl"
    bundles = default_ner_bundle.parent
    args = ["--bundles", str(bundles), "--model", "ner-food", "--input", str(data)]
    assert main([*args, "--output", str(out), "--eval", "--no-progress"]) == 0
    figures = json.loads((tmp_path / "scored.jsonl.eval.json").read_text())
    reference = evaluate_bundle(default_ner_bundle, test)
    assert figures["records"] == len(test) == 600
    assert figures["micro_f1"] == reference["entity_micro_f1"]
    # seqeval's report (3 digits): every class's F1 and support, and the macro average.
    rows = {
        m[1]: (float(m[2]), int(m[3])) for m in re.finditer(ROW, str(reference["report"]), re.M)
    }
    # The two compute F1 by different formulas, so a value on a rounding edge (0.8455) may print
    # either way: equal within the report's half-unit of the third digit.
    for name, row in figures["per_class"].items():
        assert row["support"] == rows[name][1]
        assert abs(row["f1"] - rows[name][0]) <= 0.0005 + 1e-9
    assert abs(figures["macro_f1"] - rows["macro avg"][0]) <= 0.0005 + 1e-9
    assert set(figures["per_class"]) == {k for k in rows if not k.endswith("avg")}
    low, high = figures["micro_f1_ci"]
    assert low < figures["micro_f1"] < high


def test_posture_eval_equals_the_posture_builds_figures(
    tiny_posture_bundle: Path, tmp_path: Path
) -> None:
    from export.calibration.cuts import micro_macro
    from families.classify.runtime import ClassifierPipeline
    from families.postures.spec import PostureManifest
    from service.bundle import verify_bundle
    from service.runtime.session import OnnxSession

    manifest = verify_bundle(tiny_posture_bundle)
    assert isinstance(manifest, PostureManifest)
    rng = np.random.default_rng(5)
    words = "court appeal motion dismiss summary judgment habeas writ compel injunction".split()  # noqa: SIM905
    docs = [" ".join(rng.choice(words, size=int(rng.integers(5, 900)))) for _ in range(24)]
    gold = [[lab for lab in manifest.labels if rng.random() < 0.5] for _ in docs]
    data = tmp_path / "docs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "text": d, "labels": g}) + "\n"
            for i, (d, g) in enumerate(zip(docs, gold, strict=True))
        )
    )
    out = tmp_path / "scored.jsonl"
    args = ["--bundles", str(tiny_posture_bundle.parent), "--input", str(data), "--eval"]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    figures = json.loads((tmp_path / "scored.jsonl.eval.json").read_text())
    session = OnnxSession(tiny_posture_bundle / manifest.onnx.file, manifest.onnx.output, 2)
    pipeline = ClassifierPipeline(manifest, tiny_posture_bundle, session)
    probs = pipeline.probabilities(docs).probabilities
    truth = np.asarray([[lab in g for lab in manifest.labels] for g in gold])
    micro, macro = micro_macro(probs, truth, np.asarray(manifest.postures.thresholds))
    assert (figures["micro_f1"], figures["macro_f1"]) == (round(micro, 4), round(macro, 4))
    assert list(figures["per_class"]) == manifest.labels
