"""``python -m export tfidf``: a fitted scikit-learn TF-IDF pipeline → a TF-IDF bundle.

Loading a joblib/pickle file runs code from that file: export only pipelines from a trusted
source. The bundle itself holds no pickle (JSON terms, ``.npy`` arrays, ``bundle.json``), so the
service never unpickles anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from pydantic import ConfigDict, Field

from export.atomic import staged_directory
from export.calibration.command import CalibrateOptions
from export.calibration.options import Settings
from export.errors import ExportError
from export.family import BundleCommand, BundleOptions
from export.progress import Progress
from export.versions import export_versions
from families.tfidf.convert import Converted, convert
from families.tfidf.parity import check_parity
from families.tfidf.spec import (
    DataFile,
    LinearSpec,
    TfidfManifest,
    TfidfSpec,
    VectorizerSpec,
)
from service.bundle import MANIFEST_FILE, ExportInfo, ParityReport, write_manifest

DEFAULT_ATOL = 1e-5


class TfidfExportOptions(BundleOptions):
    """What ``python -m export tfidf`` takes (also the typed Python API's options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: Path = Field(
        description="joblib/pickle file of a fitted Pipeline; loading it RUNS CODE from the "
        "file, so use only files from a trusted source"
    )
    heldout: Path = Field(
        description='held-out documents for the parity gate, JSON lines {"text": ...}'
    )
    out: Path = Field(description="bundle directory to create")
    name: str | None = Field(None, description="bundle name (default: the --out directory name)")
    version: str = Field("1", description="bundle version string")
    labels: Path | None = Field(None, description="class names, one per line (default: classes_)")
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="multi-label: every class's threshold until calibrated"
    )
    abstain_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="single-label: answer no class when the top probability is below this",
    )
    atol: float = Field(
        DEFAULT_ATOL,
        gt=0.0,
        description="largest probability difference the parity gate accepts",
    )
    force: bool = Field(False, description="replace an existing bundle directory")


def read_documents(path: Path) -> list[str]:
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ExportError(f'{path}:{number}: expected an object with a string "text"')
        texts.append(record["text"])
    return texts


def load_pipeline(path: Path) -> object:
    """Unpickle the pipeline (runs code from the file: trusted sources only)."""
    import joblib

    if not path.is_file():
        raise ExportError(f"{path}: no such pipeline file")
    try:
        return joblib.load(path)
    except Exception as exc:
        raise ExportError(
            f"{path}: cannot load the pipeline ({type(exc).__name__}: {exc})"
        ) from exc


def _data_file(directory: Path, name: str, payload: bytes) -> DataFile:
    (directory / name).write_bytes(payload)
    return DataFile(file=name, sha256=hashlib.sha256(payload).hexdigest())


def _npy(directory: Path, name: str, array: np.ndarray) -> DataFile:
    path = directory / name
    with path.open("wb") as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    return DataFile(file=name, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _labels(options: TfidfExportOptions, converted: Converted) -> list[str]:
    if options.labels is None:
        return converted.classes
    labels = [x.strip() for x in options.labels.read_text(encoding="utf-8").splitlines()]
    labels = [x for x in labels if x]
    if len(labels) != len(converted.classes):
        raise ExportError(
            f"{options.labels}: {len(labels)} labels, the classifier has "
            f"{len(converted.classes)} classes"
        )
    return labels


def write_data(converted: Converted, directory: Path) -> tuple[list[VectorizerSpec], LinearSpec]:
    vectorizers = []
    for i, v in enumerate(converted.vectorizers):
        terms = json.dumps(v.terms, ensure_ascii=False).encode("utf-8")
        vectorizers.append(
            VectorizerSpec(
                **v.options,
                terms=_data_file(directory, f"terms-{i}.json", terms),
                idf=None if v.idf is None else _npy(directory, f"idf-{i}.npy", v.idf),
            )
        )
    linear = LinearSpec(
        weights=_npy(directory, "weights.npy", converted.weights),
        bias=_npy(directory, "bias.npy", converted.bias),
        columns=int(converted.weights.shape[1]),
        members=converted.members,
    )
    return vectorizers, linear


def write_tfidf_manifest(manifest: TfidfManifest, bundle_dir: Path) -> None:
    """Atomically (temp file + rename): a reader never sees a half-written manifest."""
    write_manifest(manifest, bundle_dir)


def export_tfidf(options: TfidfExportOptions, progress: Progress | None = None) -> Path:
    """Convert, write, gate; the bundle directory appears only when the gate passed."""
    progress = progress or Progress(3)
    started = time.perf_counter()
    with progress.step("reading the pipeline (unpickling: trusted files only)"):
        pipeline = load_pipeline(options.pipeline)
        converted = convert(pipeline)
        labels = _labels(options, converted)
        documents = read_documents(options.heldout)
        features = sum(v.options["features"] for v in converted.vectorizers)
        progress.note(
            f"{converted.estimator}, {converted.head}, {len(labels)} classes, {features} "
            f"features, {len(documents)} held-out documents"
        )
    name = options.name or options.out.name
    with staged_directory(options.out, options.force) as staging:
        with progress.step("writing vectorizer terms, idf and linear weights"):
            vectorizers, linear = write_data(converted, staging)
            spec = TfidfSpec(
                head=converted.head,
                estimator=converted.estimator,
                vectorizers=vectorizers,
                linear=linear,
                thresholds=[options.threshold] * len(labels)
                if converted.head == "multi-label"
                else None,
                abstain_threshold=options.abstain_threshold
                if converted.head == "single-label"
                else None,
            )
            placeholder = ParityReport(atol=options.atol, max_abs_diff=0.0, cases=0)
            manifest = TfidfManifest(
                name=name,
                version=options.version,
                labels=labels,
                tfidf=spec,
                export=ExportInfo(
                    created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    source=str(options.pipeline),
                    duration_s=0.0,
                    versions=export_versions(("scikit-learn", "numpy")),
                ),
                parity=placeholder,
            )
        with progress.step(f"parity gate: served vs predict_proba within {options.atol:g}"):
            report = check_parity(pipeline, manifest, staging, documents, options.atol)
            progress.note(f"max abs diff {report.max_abs_diff:.3g} over {report.cases} documents")
        export_info = manifest.export.model_copy(
            update={"duration_s": round(time.perf_counter() - started, 3)}
        )
        final = manifest.model_copy(update={"parity": report, "export": export_info})
        write_tfidf_manifest(final, staging)
    return options.out


class TfidfExport(BundleCommand[TfidfExportOptions]):
    """The family's export command (``python -m export tfidf``, ``export_bundle("tfidf", ...)``):
    a :class:`~export.family.BundleCommand` that writes no ONNX graph, so it runs its own
    converter and parity gate instead of the shared driver."""

    command = "tfidf"
    summary = "scikit-learn TF-IDF + linear classifier pipeline (joblib/pickle) -> bundle"
    options = TfidfExportOptions
    calibrates = True
    calibration_help = (
        "multi-label: the posture bundles' cross-validated per-class thresholds, automation and "
        'review band, from the bundle\'s served (numpy) probabilities; {"text", "labels"} lines.'
    )

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        from families.tfidf.calibrate import run_tfidf_calibration

        return run_tfidf_calibration(options, settings)

    def export(self, options: TfidfExportOptions) -> Path:
        out = export_tfidf(options)
        print(f"bundle written to {out} ({MANIFEST_FILE}, terms, idf and weights)")
        return out


FAMILY = TfidfExport()
