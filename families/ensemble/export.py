"""``python -m export ensemble``: member bundles + a labelled validation file -> an ensemble bundle.

The members (multi-label classifier bundles with identical labels, found by name in
``--bundles-dir``) score the validation documents with their served probabilities (loaded as the
service loads them); :func:`export.calibration.ensemble.select_ensemble` chooses each class's
weights and threshold out of fold; the bundle (``bundle.json`` only) and the report are written
atomically. Nothing is written when a check refuses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from export.atomic import staged_directory
from export.calibration.automation import (
    DEFAULT_AUTOMATION_F1,
    DEFAULT_TARGET_PRECISION,
    AutomationSettings,
    automation,
)
from export.calibration.ensemble import EnsembleSettings, select_ensemble
from export.cli_options import Flag
from export.errors import ExportError
from export.family import BundleCommand, BundleOptions
from export.versions import export_versions
from families.classify.validation import LabelledDocument, read_documents
from families.ensemble.report import build_report, write_report
from families.ensemble.runtime import EnsembleRuntime
from families.ensemble.spec import EnsembleManifest
from service.bundle import MANIFEST_FILE, BundleError, read_manifest, sha256_of, write_manifest
from service.ensemble import EnsembleMember, combine
from service.manifest import ExportInfo, ParityReport
from service.runtime.family import RequestOptions, Resolved
from service.runtime.loader import load_runtime
from service.settings import Settings

PARITY_ATOL = 1e-9
PARITY_DOCUMENTS = 32


class EnsembleOptions(BundleOptions):
    members: Annotated[tuple[str, ...], Flag(several=True)] = Field(
        min_length=2, description="names of the member bundles (multi-label, identical labels)"
    )
    bundles_dir: Path = Field(description="directory holding the member bundles")
    validation: Path = Field(description='labelled JSON lines {"text": ..., "labels": [...]}')
    name: str | None = Field(None, description="bundle name (default: the --out directory name)")
    version: str = Field("1", description="bundle version string")
    force: bool = Field(False, description="replace an existing bundle directory")
    folds: int = Field(5, ge=2, description="cross-validation folds")
    seed: int = Field(0, description="folds and bootstrap seed")
    draws: int = Field(1000, ge=1, description="bootstrap draws of the paired F1 gain")
    grid: int = Field(10, ge=1, description="weights searched in steps of 1/grid")
    report: Path | None = Field(
        None, description="report JSON (Markdown and PNG beside it; default: in the bundle)"
    )
    plots: Annotated[bool, Flag(name="--no-plots")] = Field(
        True, description="skip the PNG (matplotlib)"
    )
    batch_size: int = Field(16, ge=1, description="documents per member call while scoring")
    automation_f1: float = Field(
        DEFAULT_AUTOMATION_F1,
        ge=0.0,
        le=1.0,
        description="a class is automated when its out-of-fold F1 interval low end reaches this",
    )
    review_precision: float = Field(
        DEFAULT_TARGET_PRECISION,
        ge=0.0,
        le=1.0,
        description="precision the automatically issued labels must reach on validation",
    )
    review_miss_rate: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="most positives among the absences issued automatically on validation "
        "(default: 1 - --review-precision)",
    )
    no_automation: bool = Field(
        False, description="skip per-class automation (the bundle stays schema version 4)"
    )


def find_member(bundles_dir: Path, name: str) -> Path:
    """The bundle directory whose manifest is named ``name``."""
    for path in sorted(bundles_dir.glob(f"*/{MANIFEST_FILE}")):
        try:
            if read_manifest(path.parent).name == name:
                return path.parent
        except BundleError:
            continue
    raise ExportError(f"no bundle named {name!r} in {bundles_dir}")


def served_probabilities(member: Resolved, texts: list[str], batch: int) -> np.ndarray:
    """[documents, classes] as the member's runtime serves them."""
    runtime = member.runtime
    parts = []
    for i in range(0, len(texts), batch):
        prepared = runtime.prepare(texts[i : i + batch], RequestOptions())
        parts.append(np.asarray(runtime.run_prepared([prepared])[0].probabilities))
    return np.concatenate(parts).astype(np.float64)


def _truth(docs: list[LabelledDocument], labels: list[str], path: Path) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    truth = np.zeros((len(docs), len(labels)), dtype=bool)
    for d, doc in enumerate(docs):
        for label in doc.labels:
            if label not in index:
                raise ExportError(f"{path}: document {d + 1} has label {label!r}, not a member's")
            truth[d, index[label]] = True
    return truth


class EnsembleCommand(BundleCommand[EnsembleOptions]):
    command: ClassVar[str] = "ensemble"
    summary: ClassVar[str] = "combine classifier bundles with per-class cross-validated weights"
    options = EnsembleOptions

    def export(self, options: EnsembleOptions) -> Path:
        started = time.perf_counter()
        settings = Settings(bundles_dir=options.bundles_dir, max_batch_size=8)
        members: list[Resolved] = []
        for name in options.members:
            directory = find_member(options.bundles_dir, name)
            try:
                loaded = load_runtime(directory, settings)
            except BundleError as exc:
                raise ExportError(f"member {name}: {exc}") from exc
            members.append(Resolved(loaded.manifest, directory, loaded.runtime))
        labels = list(members[0].manifest.labels)
        for m in members:
            if m.manifest.head != "multi-label":
                raise ExportError(
                    f"member {m.manifest.name} is {m.manifest.head}; need multi-label"
                )
            if list(m.manifest.labels) != labels:
                raise ExportError(
                    f"members must have identical labels: {members[0].manifest.name} has "
                    f"{labels}, {m.manifest.name} {m.manifest.labels}"
                )
        docs = read_documents(options.validation)
        if len(docs) < 2 * options.folds:
            raise ExportError(
                f"{options.validation}: {len(docs)} documents; {options.folds}-fold "
                f"cross-validation needs at least {2 * options.folds}"
            )
        truth = _truth(docs, labels, options.validation)
        texts = [d.text for d in docs]
        probs = np.stack([served_probabilities(m, texts, options.batch_size) for m in members])
        refs = [
            EnsembleMember(
                name=m.manifest.name, manifest_sha256=sha256_of(m.bundle_dir / MANIFEST_FILE)
            )
            for m in members
        ]
        spec = select_ensemble(
            probs,
            truth,
            labels,
            refs,
            str(options.validation),
            EnsembleSettings(options.folds, options.seed, options.draws, options.grid),
        )
        if not options.no_automation:
            # per-class automation of the combination as served, at its thresholds (docs/review.md)
            summary = automation(
                combine(probs, spec.weight_matrix()),
                truth,
                [float(t) for t in spec.thresholds()],
                labels,
                AutomationSettings(
                    target_f1=options.automation_f1,
                    target_precision=options.review_precision,
                    target_miss_rate=options.review_miss_rate,
                    folds=options.folds,
                    seed=options.seed,
                    draws=options.draws,
                ),
            )
            spec = spec.model_copy(update={"automation": summary})
        fields: dict[str, Any] = {
            "name": options.name or options.out.resolve().name,
            "version": options.version,
            "labels": labels,
            "export": ExportInfo(
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                source=f"ensemble of {', '.join(options.members)} on {options.validation}",
                duration_s=round(time.perf_counter() - started, 3),
                versions=export_versions(()),
            ),
            "parity": ParityReport(atol=PARITY_ATOL, max_abs_diff=0.0, cases=0),
            "ensemble": spec,
        }
        # The served path (each member's prepare/run_prepared, then the combination) must give
        # the documented combination of the probabilities the selection saw.
        version = 5 if spec.automation is not None else 4
        draft = EnsembleManifest(schema_version=version, **fields)
        runtime = EnsembleRuntime(draft, members)
        n = min(PARITY_DOCUMENTS, len(texts))
        served = runtime.predict(texts[:n]).probabilities
        diff = float(np.abs(served - combine(probs[:, :n], spec.weight_matrix())).max())
        if diff > PARITY_ATOL:
            raise ExportError(f"served ensemble differs from the combination by {diff:.3g}")
        fields["parity"] = ParityReport(atol=PARITY_ATOL, max_abs_diff=diff, cases=n)
        # Version 4 (the lowest that knows task "ensemble"), 5 with automation: no variant, no
        # self-check.
        manifest = EnsembleManifest(schema_version=version, **fields)
        report = build_report(spec, probs, truth, len(docs))
        with staged_directory(options.out, overwrite=options.force) as staging:
            write_manifest(manifest, staging)
            if options.report is None:
                write_report(report, staging / "ensemble-report.json", options.plots)
        if options.report is not None:
            write_report(report, options.report, options.plots)
        return options.out


FAMILY = EnsembleCommand()
