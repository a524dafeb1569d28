"""The one export driver: checkpoint → family model → ONNX → gates → bundle, for every family."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from export.atomic import staged_directory
from export.checkpoint import build_model, load_checkpoint, save_serving_tokenizer
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.naming import bundle_name
from export.onnx_graph import OPSET
from export.options import ExportOptions
from export.progress import Progress
from export.selfcheck import SampleSpec
from export.variants.gate import Agreement
from export.variants.request import read_validation_texts
from export.variants.ship import ship_graph, variant_steps
from export.versions import export_versions
from service.bundle import (
    ExportInfo,
    ManifestBase,
    OnnxInfo,
    ParityReport,
    TokenizerInfo,
    schema_version_for,
    sha256_of,
    verify_bundle,
    write_manifest,
)
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import TextTokenizer

Opts = TypeVar("Opts", bound=ExportOptions)
T = TypeVar("T", bound=ManifestBase)


def _manifest(manifest_type: type[T], fields: dict[str, Any]) -> T:
    """The manifest with the lowest ``schema_version`` that describes it (set here, never by a
    family, so that older services keep loading what they can serve)."""
    draft = manifest_type.model_construct(**fields)
    return manifest_type(**fields, schema_version=schema_version_for(draft))


def window_lengths(limit: int, options: ExportOptions) -> tuple[int, int]:
    max_length = options.max_length or min(limit, options.max_length_cap)
    if not 8 <= max_length <= limit:
        raise ExportError(f"--max-length {max_length} must be between 8 and the model's {limit}")
    stride = options.stride if options.stride is not None else max_length // options.stride_divisor
    if not 0 <= stride < max_length - 2:
        raise ExportError(f"--stride {stride} must be >= 0 and < max length - 2")
    return max_length, stride


def run_export(family: ExportFamily[Any, Opts], options: Opts) -> ManifestBase:
    """Run the whole export; the bundle directory appears only if every gate passed."""
    request = options.variant
    request.check()
    validation = read_validation_texts(request.validation)
    progress = Progress(total_steps=5 + variant_steps(request))
    with progress.step(f"loading checkpoint {options.checkpoint}"):
        raw = load_checkpoint(
            options.checkpoint, options.base, options.labels, options.trust_checkpoint
        )
        model = build_model(raw, lambda r: family.build(r, options))
        max_length, stride = window_lengths(family.position_limit(model), options)
        name = bundle_name(options.name, options.out)
        progress.note(
            f"{len(raw.labels)} labels: {' '.join(raw.labels[:12])}"
            f"{' …' if len(raw.labels) > 12 else ''}; windows of {max_length}, stride {stride}"
        )
    pad = raw.tokenizer.pad_token_id
    pad_id = int(pad if pad is not None else (raw.config.pad_token_id or 0))
    with staged_directory(options.out, overwrite=options.force) as staging:
        with progress.step("writing tokenizer.json"):
            save_serving_tokenizer(raw.tokenizer, staging / "tokenizer.json")
            tokenizer = TextTokenizer(staging / "tokenizer.json")
            family.check_tokenizer(model, tokenizer)
        with progress.step(f"exporting ONNX graph (opset {OPSET}, dynamic batch and sequence)"):
            inputs = family.export_graph(model, staging / "model.onnx")
            progress.note(f"model.onnx: {(staging / 'model.onnx').stat().st_size / 1e6:.1f} MB")
        ctx = GateContext(
            tokenizer, max_length, stride, pad_id, options.atol, progress, validation, options
        )

        def session(graph: Path) -> OnnxSession:
            return OnnxSession(graph, family.output, available_cpus())

        def parity_of(graph: Path) -> ParityReport:
            return family.parity(model, session(graph), ctx)

        def agreement_of(fp32: Path, variant: Path) -> Agreement:
            return family.agreement(model, session(fp32), session(variant), ctx)

        parity, variant, selfcheck, int8_graphs = ship_graph(
            staging / "model.onnx",
            family.graph_spec(model),
            request,
            parity_of,
            agreement_of,
            progress,
            f"checking parity against PyTorch (atol {options.atol:g})",
            SampleSpec(staging / "tokenizer.json", family.output, max_length, pad_id),
            validation,
        )
        with progress.step("writing bundle.json"):
            common: dict[str, Any] = {
                "name": name,
                "version": options.version,
                "labels": raw.labels,
                "onnx": OnnxInfo(
                    sha256=sha256_of(staging / "model.onnx"),
                    opset=OPSET,
                    inputs=inputs,
                    output=family.output,
                ),
                "tokenizer": TokenizerInfo(
                    max_length=max_length,
                    stride=stride,
                    pad_token_id=pad_id,
                    sha256=sha256_of(staging / "tokenizer.json"),
                ),
                "export": ExportInfo(
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    source=raw.source,
                    duration_s=round(progress.elapsed, 1),
                    versions=export_versions(family.extra_versions),
                ),
                "parity": parity,
                "variant": variant,
                "selfcheck": selfcheck,
                "int8_graphs": int8_graphs,
            }
            manifest = _manifest(family.manifest_type, {**common, **family.sections(model, ctx)})
            write_manifest(manifest, staging)
            verify_bundle(staging)  # the service's own loader must accept what we wrote
    print(f"bundle written to {options.out} in {progress.elapsed:.1f} s{family.done_note()}")
    return manifest
