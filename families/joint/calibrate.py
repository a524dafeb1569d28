"""``python -m export calibrate`` on a joint bundle: each labelled sequence head's decisions.

The validation file is the one a classifier's calibration reads, one JSON object per line:
``{"text": ..., "labels": [...]}``, where ``labels`` are the intent head's (for ``nlu-food`` the
file ``intent-food`` is calibrated on), plus, for other heads, ``"heads": {"command": [...]}``
(``heads`` may also name the intent head; it wins over ``labels``). A head is calibrated when
every line labels it; a head labelled on some lines only is refused, naming the first line
without it.

Every text is scored once by the bundle's own graph through the joint runtime (the served
windows and aggregation, every head from the same ONNX calls), then each labelled head is
decided by the classifier calibration's own code:

- single-label head: the abstain threshold, the lowest cut on the top probability whose precision
  among answered texts reaches ``--target-precision``, with its out-of-fold precision and coverage
  (:func:`families.classify.abstain.abstain_decision`);
- multi-label head: 0.5 / one global / per class / per class shrunk, cross-validated inside the
  file, the option with the best out-of-fold micro-F1 shipped, ties to the simpler
  (:func:`export.calibration.selection.select`). No per-class automation (review band): that is
  a classifier manifest's section, which a joint head does not have.

The token head is not calibrated (it decodes by constrained Viterbi, no thresholds). Written: the
decisions into ``bundle.json`` (each head's ``classify`` section) and one report, JSON + Markdown
with a section per head + PNGs (abstention curve per single-label head; F1 curves and
reliability per multi-label head).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from export.calibration.selection import select
from export.errors import ExportError
from export.progress import Progress
from families.classify.abstain import abstain_decision, describe_abstain, single_label_gold
from families.classify.calibrate import (
    TEST_SPLIT_WARNING,
    draw_plots,
    print_report,
    report_paths,
    summary_of,
    truth_of,
)
from families.classify.validation import CalibrationOptions
from families.joint.runtime import JointRuntime
from families.joint.spec import JointManifest, SequenceHead
from service.bundle import verify_bundle, write_manifest
from service.manifest import updated_fields
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession


class JointDocument(BaseModel):
    """One validation line: the intent head's ``labels`` and/or other heads' under ``heads``."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    labels: list[str] | None = None
    heads: dict[str, list[str]] = Field(default_factory=dict)


def read_joint_documents(path: Path) -> list[JointDocument]:
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            docs.append(JointDocument.model_validate_json(line))
        except ValidationError as exc:
            raise ExportError(
                f"{path}:{number}: not a {{'text', 'labels', 'heads'}} object: {exc}"
            ) from exc
    if not docs:
        raise ExportError(f"{path}: no documents")
    return docs


def head_labels(
    docs: list[JointDocument], manifest: JointManifest, path: Path
) -> dict[str, list[list[str]]]:
    """{head: gold labels per line} for every head that every line labels, in manifest order."""
    names = manifest.joint.head_names
    unknown = sorted({name for d in docs for name in d.heads} - set(names))
    if unknown:
        raise ExportError(f"{path}: heads {unknown} are not sequence heads of the bundle {names}")
    intent = manifest.joint.intent_head
    out: dict[str, list[list[str]]] = {}
    for name in names:
        given = [d.heads.get(name, d.labels if name == intent else None) for d in docs]
        missing = [number for number, g in enumerate(given, start=1) if g is None]
        if len(missing) == len(given):
            continue
        if missing:
            where = "labels" if name == intent else f"heads.{name}"
            raise ExportError(
                f"{path}: head {name!r} is labelled on {len(given) - len(missing)} of "
                f"{len(given)} lines; line {missing[0]} has no {where} (label every line, or none)"
            )
        out[name] = [g for g in given if g is not None]
    if not out:
        raise ExportError(
            f"{path}: no line labels a sequence head; give the intent head's ({intent!r}) under "
            f"'labels' or any head's under 'heads' (heads: {names})"
        )
    return out


def load_joint(options: CalibrationOptions) -> tuple[JointManifest, JointRuntime]:
    manifest = verify_bundle(options.bundle)
    if not isinstance(manifest, JointManifest):
        raise ExportError(f"{options.bundle} is a {manifest.task} bundle, not a joint bundle")
    session = OnnxSession(
        options.bundle / manifest.onnx.file, manifest.onnx.output, available_cpus()
    )
    runtime = JointRuntime(manifest, options.bundle, session, max_batch_size=options.batch_size)
    return manifest, runtime


def score_heads(runtime: JointRuntime, texts: list[str], names: list[str]) -> dict[str, np.ndarray]:
    """Served probabilities [texts, classes] of each named head, every head from one pass."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for begin in range(0, len(texts), 16):
        heads = runtime.predict(texts[begin : begin + 16]).heads
        for name in names:
            parts[name].append(heads[name].probabilities)
    return {name: np.concatenate(parts[name]) for name in names}


def with_head_decisions(manifest: JointManifest, name: str, **fields: Any) -> JointManifest:
    """A copy with one sequence head's decision fields replaced, re-validated."""
    sequence = [
        h.model_copy(update={"classify": h.classify.model_copy(update=fields)})
        if h.name == name
        else h
        for h in manifest.joint.sequence
    ]
    joint = manifest.joint.model_copy(update={"sequence": sequence})
    updated = manifest.model_copy(update={"joint": joint})
    return JointManifest.model_validate(updated_fields(updated))


def _head_paths(paths: dict[str, Path], name: str) -> dict[str, Path]:
    stem = paths["json"].with_suffix("")
    return {
        "json": paths["json"],
        "markdown": paths["markdown"],
        **{
            kind: stem.parent / f"{stem.name}_{name}_{kind}.png"
            for kind in ("f1_curves", "reliability", "abstain")
        },
    }


def _single_label(
    head: SequenceHead,
    probs: np.ndarray,
    gold_labels: list[list[str]],
    options: CalibrationOptions,
    paths: dict[str, Path],
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(decision fields, report section, Markdown lines) of a single-label head."""
    what = f"single-label head {head.name!r}"
    gold = single_label_gold(head.labels, gold_labels, options.data, what)
    estimate, summary, correct = abstain_decision(probs, gold, options.data, options)
    fields = {"abstain_threshold": float(estimate.threshold), "calibration": summary}
    unknown = sorted({g[0] for g in gold_labels if g and g[0] not in head.labels})
    section: dict[str, Any] = {
        "kind": "single-label",
        "abstain_threshold": estimate.threshold,
        **summary.model_dump(),
        "out_of_scope_texts": int((gold < 0).sum()),
        "unknown_labels": unknown,
    }
    markdown = [
        f"## Head `{head.name}` (single-label): abstain threshold",
        "",
        f"Answer only when the top probability reaches **{estimate.threshold:.4f}**: the lowest "
        f"cut whose precision among answered texts reaches {options.target_precision} "
        f"({summary.folds}-fold out-of-fold estimate below; a text labelled `[]` or with a label "
        "the head does not have counts as wrong whatever the head answers).",
        "",
        "| | precision among answered | coverage |",
        "|---|---:|---:|",
        f"| validation (in sample) | {summary.precision:.3f} | {summary.coverage:.3f} |",
        f"| out of fold [95%] | {summary.oof_precision:.3f} [{summary.oof_precision_low:.3f}, "
        f"{summary.oof_precision_high:.3f}] | {summary.oof_coverage:.3f} |",
        "",
        f"Top-1 accuracy answering everything: {summary.accuracy_without_abstain:.3f} "
        f"({len(gold)} texts, {section['out_of_scope_texts']} without a class of the head).",
    ]
    files = []
    if options.plots:
        from export.calibration.plots import plot_abstain

        picture = plot_abstain(
            probs.max(axis=1),
            correct,
            estimate.threshold,
            options.target_precision,
            paths["abstain"],
        )
        markdown += ["", f"![Abstention: precision and coverage vs threshold]({picture.name})"]
        files.append(str(picture))
    section["files"] = files
    print(f"head {head.name}: {describe_abstain(estimate, correct, options.target_precision)}")
    return fields, section, markdown


def _multi_label(
    manifest: JointManifest,
    head: SequenceHead,
    probs: np.ndarray,
    gold_labels: list[list[str]],
    options: CalibrationOptions,
    paths: dict[str, Path],
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(decision fields, report section, Markdown lines) of a multi-label head."""
    from export.calibration.report import build_report, to_markdown

    truth, unknown = truth_of(gold_labels, head.labels)
    try:
        selection = select(probs, truth, options.settings)
    except ValueError as exc:
        raise ExportError(f"head {head.name!r}: {exc}") from exc
    shipped = selection.shipped
    fields = {
        "thresholds": [float(t) for t in shipped.thresholds],
        "global_threshold": float(selection.global_threshold),
        "calibration": summary_of(selection, options.data, len(gold_labels)),
    }
    section = build_report(
        selection,
        head.labels,
        probs,
        truth,
        {
            "bundle": f"{manifest.name}, head {head.name}",
            "data": str(options.data),
            "unknown_labels": dict(unknown),
        },
    )
    images = draw_plots(section, probs, truth, paths, options.plots)
    section["files"] = [str(p) for p in images.values()]
    section = {"kind": "multi-label", **section}
    body = to_markdown(section, images).splitlines()
    markdown = [f"## Head `{head.name}` (multi-label): per-class thresholds"]
    markdown += [f"#{line}" if line.startswith("## ") else line for line in body[1:]]
    print(f"head {head.name}:")
    print_report(section)
    return fields, section, markdown


def run_joint_calibration(options: CalibrationOptions) -> dict[str, object]:
    """Calibrate every labelled sequence head of a joint bundle; write the decisions and report."""
    print(TEST_SPLIT_WARNING, file=sys.stderr)
    progress = Progress(total_steps=4)
    with progress.step(f"loading {options.bundle} and {options.data}"):
        manifest, runtime = load_joint(options)
        docs = read_joint_documents(options.data)
        minimum = 2 * options.settings.folds
        if len(docs) < minimum:
            raise ExportError(
                f"{options.data}: {len(docs)} texts; {options.settings.folds}-fold "
                f"cross-validation needs at least {minimum}"
            )
        gold = head_labels(docs, manifest, options.data)
    with progress.step(f"scoring {len(docs)} texts with the bundle's ONNX graph (every head)"):
        probs = score_heads(runtime, [d.text for d in docs], list(gold))
    paths = report_paths(options.report or options.bundle / "calibration_report.json")
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    updated, sections = manifest, {}
    markdown = [
        f"# Calibration report: {manifest.name} (joint)",
        "",
        f"Data: `{options.data}`, {len(docs)} texts; heads calibrated: "
        + ", ".join(f"`{name}`" for name in gold)
        + f"; {options.settings.folds}-fold stratified cross-validation, "
        f"{options.settings.draws} bootstrap resamplings, seed {options.settings.seed}. The token "
        f"head `{manifest.joint.token.name}` decodes by constrained Viterbi: nothing to tune.",
    ]
    with progress.step(f"choosing the decisions of {len(gold)} head(s)"):
        for name, given in gold.items():
            head = manifest.joint.head(name)
            own = _head_paths(paths, name)
            if head.classify.head == "single-label":
                fields, section, lines = _single_label(head, probs[name], given, options, own)
            else:
                fields, section, lines = _multi_label(
                    manifest, head, probs[name], given, options, own
                )
            updated = with_head_decisions(updated, name, **fields)
            sections[name] = section
            markdown += ["", *lines]
    with progress.step("writing the decisions and the report"):
        report: dict[str, object] = {
            "bundle": manifest.name,
            "data": str(options.data),
            "documents": len(docs),
            "heads": sections,
            "files": {
                "json": str(paths["json"]),
                "markdown": str(paths["markdown"]),
                "images": [f for s in sections.values() for f in s["files"]],
            },
        }
        write_manifest(updated, options.bundle)
        paths["json"].write_text(json.dumps(report, indent=2) + "\n")
        paths["markdown"].write_text("\n".join(markdown) + "\n")
    print(
        f"decisions of heads {list(gold)} written to {options.bundle / 'bundle.json'}; report: "
        f"{paths['json']}, {paths['markdown']}"
    )
    return report
