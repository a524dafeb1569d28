"""``python -m export calibrate`` on a joint bundle: every labelled sequence head gets the decision
a classifier bundle of its kind would get (single-label: the cross-validated abstain threshold;
multi-label: the cross-validated, never-worse per-class thresholds), the served answers apply
them, the report has JSON, Markdown and a PNG per head, and a bad file changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.calibration.abstain import estimate_abstain
from export.calibration.options import Settings
from export.calibration.selection import select
from export.cli import main
from families.classify.spec import AbstainSummary, CalibrationSummary
from families.joint.runtime import JointRuntime
from families.joint.spec import JointManifest
from service.bundle import verify_bundle
from service.runtime.session import OnnxSession
from tests.families import MULTILINGUAL
from tests.joint_families import COMMANDS, INTENTS, JointCase, source_args, write_joint

pytestmark = pytest.mark.slow

EXPORT = ["--max-length", "64", "--stride", "16", "--head-type", "command=multi-label"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = JointCase("bert", "crf", "bert", "dir")
    root = write_joint(tmp_path_factory.mktemp("joint-calibrate"), case)
    out = root / "bundle"
    assert main(["joint", *source_args(root, case.form), "--out", str(out), *EXPORT]) == 0
    return out


def _runtime(bundle: Path) -> tuple[JointManifest, JointRuntime]:
    manifest = verify_bundle(bundle)
    assert isinstance(manifest, JointManifest)
    session = OnnxSession(bundle / manifest.onnx.file, manifest.onnx.output, 1)
    return manifest, JointRuntime(manifest, bundle, session)


def _texts(n: int = 90) -> list[str]:
    rng = np.random.default_rng(0)
    words = " ".join(MULTILINGUAL).split()
    return [" ".join(rng.choice(words, size=int(rng.integers(2, 24)))) for _ in range(n)]


def _gold(
    intent: np.ndarray, command: np.ndarray
) -> tuple[list[list[str]], list[list[str]], np.ndarray]:
    """Intent gold: right when confident (mostly), else wrong or "none of the classes";
    command gold: each class positive above a per-class cut of its own probability (shifted
    away from 0.5, so tuned cuts can win), with a few flips."""
    top = intent.argmax(axis=1)
    confident = intent.max(axis=1) >= np.median(intent.max(axis=1))
    intents = [
        [INTENTS[t]] if ok or i % 5 == 0 else ([] if i % 2 else [INTENTS[(t + 1) % len(INTENTS)]])
        for i, (t, ok) in enumerate(zip(top, confident, strict=True))
    ]
    cuts = np.quantile(command, [0.3, 0.6, 0.8], axis=0).diagonal()
    truth = command >= cuts[None, :]
    truth[::7] = ~truth[::7]
    commands = [[COMMANDS[c] for c in np.flatnonzero(row)] for row in truth]
    return intents, commands, truth


def test_every_labelled_head_gets_its_classifier_decision_and_the_service_applies_it(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "nlu"
    bundle.mkdir()
    for path in exported.iterdir():
        (bundle / path.name).write_bytes(path.read_bytes())
    before, runtime = _runtime(bundle)
    assert before.joint.head("intent").classify.abstain_threshold is None
    assert before.joint.head("command").classify.thresholds == [0.5] * len(COMMANDS)
    texts = _texts()
    served = runtime.predict(texts).heads
    intent, command = served["intent"].probabilities, served["command"].probabilities
    intents, commands, truth = _gold(intent, command)
    data = tmp_path / "val.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "labels": i, "heads": {"command": c}}) + "\n"
            for t, i, c in zip(texts, intents, commands, strict=True)
        )
    )
    argv = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--bootstrap", "200"]
    assert main([*argv, "--target-precision", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "head intent: abstain threshold" in out and "head command:" in out

    manifest, runtime = _runtime(bundle)
    settings = Settings(draws=200)
    gold = np.asarray([INTENTS.index(g[0]) if g else -1 for g in intents])
    correct = intent.argmax(axis=1) == gold
    expected = estimate_abstain(intent.max(axis=1), correct, 0.8, settings)
    head = manifest.joint.head("intent").classify
    assert head.abstain_threshold == pytest.approx(expected.threshold)
    assert isinstance(head.calibration, AbstainSummary)
    assert head.calibration.coverage == expected.coverage and 0 < expected.coverage < 1
    selection = select(command, truth, settings)
    head = manifest.joint.head("command").classify
    assert head.thresholds == pytest.approx([float(t) for t in selection.shipped.thresholds])
    assert isinstance(head.calibration, CalibrationSummary)
    assert head.calibration.method == selection.chosen  # the classifier's never-worse rule
    assert selection.chosen != "at_0.5"  # the gold cuts are shifted: tuned cuts must win

    answered = runtime.predict(texts).heads
    threshold = manifest.joint.head("intent").classify.abstain_threshold
    assert threshold is not None
    intent_answers = answered["intent"]
    for probs, labels in zip(intent_answers.probabilities, intent_answers.labels, strict=True):
        top = [INTENTS[int(probs.argmax())]] if probs.max() >= threshold else []
        assert [c.label for c in labels] == top
    cuts = np.asarray(manifest.joint.head("command").classify.thresholds)
    command_answers = answered["command"]
    for probs, labels in zip(command_answers.probabilities, command_answers.labels, strict=True):
        expected_labels = {COMMANDS[c] for c in np.flatnonzero(probs >= cuts)}
        assert {c.label for c in labels} == expected_labels

    report = json.loads((bundle / "calibration_report.json").read_text())
    assert set(report["heads"]) == {"intent", "command"}
    assert report["heads"]["intent"]["abstain_threshold"] == pytest.approx(threshold)
    assert report["heads"]["command"]["shipped"]["option"] == selection.chosen
    markdown = (bundle / "calibration_report.md").read_text()
    assert "## Head `intent` (single-label)" in markdown
    assert "## Head `command` (multi-label)" in markdown
    for name in (
        "calibration_report_intent_abstain.png",
        "calibration_report_command_f1_curves.png",
        "calibration_report_command_reliability.png",
    ):
        assert (bundle / name).read_bytes()[:4] == b"\x89PNG", name
        assert name in markdown


def test_the_intent_file_alone_calibrates_the_intent_head_only(
    exported: Path, tmp_path: Path
) -> None:
    """The same {"text", "labels"} file the intent classifier is calibrated on."""
    bundle = tmp_path / "nlu"
    bundle.mkdir()
    for path in exported.iterdir():
        (bundle / path.name).write_bytes(path.read_bytes())
    texts = _texts(40)
    data = tmp_path / "intents.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "labels": [INTENTS[i % 3]] if i % 4 else []}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    report = tmp_path / "out" / "intent.json"
    argv = ["calibrate", "--bundle", str(bundle), "--data", str(data), "--report", str(report)]
    assert main([*argv, "--no-plots", "--bootstrap", "100"]) == 0
    manifest, _ = _runtime(bundle)
    assert manifest.joint.head("intent").classify.abstain_threshold is not None
    assert manifest.joint.head("command").classify.thresholds == [0.5] * len(COMMANDS)
    assert manifest.joint.head("command").classify.calibration is None
    assert list(json.loads(report.read_text())["heads"]) == ["intent"]
    assert report.with_suffix(".md").is_file()
    assert not list(report.parent.glob("*.png"))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [{"text": "a b", "labels": [], "heads": {"command": []}}] * 11
            + [{"text": "c d", "labels": []}],
            "head 'command' is labelled on 11 of 12 lines; line 12 has no heads.command",
        ),
        (
            [{"text": "a b", "labels": [], "heads": {"commands": []}}] * 12,
            "heads ['commands'] are not sequence heads of the bundle ['intent', 'command']",
        ),
        (
            [{"text": "a b", "labels": INTENTS[:2]}] * 12,
            "2 labels; a single-label head 'intent' takes one label per text",
        ),
        ([{"text": "a b", "labels": []}] * 3, "3 texts; 5-fold cross-validation needs at least"),
        ([{"text": "a b"}] * 12, "no line labels a sequence head"),
    ],
    ids=["partial-head", "unknown-head", "two-labels", "too-few", "unlabelled"],
)
def test_a_bad_validation_file_is_refused_by_name_and_changes_nothing(
    exported: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lines: list[dict[str, object]],
    message: str,
) -> None:
    data = tmp_path / "val.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = sorted((p.name, p.read_bytes()) for p in exported.iterdir())
    assert main(["calibrate", "--bundle", str(exported), "--data", str(data)]) == 1
    assert message in capsys.readouterr().err
    assert sorted((p.name, p.read_bytes()) for p in exported.iterdir()) == before
