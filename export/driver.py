"""The one export driver: checkpoint → family model → ONNX → gates → bundle, for every family."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export.atomic import staged_directory
from export.checkpoint import build_model, load_checkpoint, save_serving_tokenizer
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.naming import bundle_name
from export.onnx_graph import OPSET
from export.progress import Progress
from export.selfcheck import SampleSpec
from export.variants.gate import Agreement
from export.variants.request import VariantRequest, read_validation_texts
from export.variants.ship import ship_graph, variant_steps
from export.versions import export_versions
from service.bundle import (
    ExportInfo,
    ManifestBase,
    OnnxInfo,
    ParityReport,
    TokenizerInfo,
    sha256_of,
    verify_bundle,
    write_manifest,
)
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import TextTokenizer


def variant_request(args: argparse.Namespace) -> VariantRequest:
    return VariantRequest(
        optimize=args.optimize,
        quantize=args.quantize,
        per_channel=args.per_channel,
        int8_format=args.int8_format,
        keep_sensitive=args.keep_sensitive,
        keep_fp32=tuple(args.keep_fp32),
        min_agreement=args.min_agreement,
        validation=args.validation,
        calibration=args.calibration,
        percentile=args.percentile,
        fallback_fp32=args.fallback_fp32,
    )


def window_lengths(
    limit: int, family: ExportFamily[Any], args: argparse.Namespace
) -> tuple[int, int]:
    max_length = args.max_length or min(limit, family.max_length_cap)
    if not 8 <= max_length <= limit:
        raise ExportError(f"--max-length {max_length} must be between 8 and the model's {limit}")
    stride = args.stride if args.stride is not None else max_length // family.stride_divisor
    if not 0 <= stride < max_length - 2:
        raise ExportError(f"--stride {stride} must be >= 0 and < max length - 2")
    return max_length, stride


def export_bundle(family: ExportFamily[Any], args: argparse.Namespace) -> ManifestBase:
    """Run the whole export; the bundle directory appears only if every gate passed."""
    request = variant_request(args)
    request.check()
    validation = read_validation_texts(request.validation)
    progress = Progress(total_steps=5 + variant_steps(request))
    with progress.step(f"loading checkpoint {args.checkpoint}"):
        raw = load_checkpoint(args.checkpoint, args.base, args.labels, args.trust_checkpoint)
        model = build_model(raw, lambda r: family.build(r, args))
        max_length, stride = window_lengths(family.position_limit(model), family, args)
        name = bundle_name(args.name, args.out)
        progress.note(
            f"{len(raw.labels)} labels: {' '.join(raw.labels[:12])}"
            f"{' …' if len(raw.labels) > 12 else ''}; windows of {max_length}, stride {stride}"
        )
    pad = raw.tokenizer.pad_token_id
    pad_id = int(pad if pad is not None else (raw.config.pad_token_id or 0))
    with staged_directory(args.out, overwrite=args.force) as staging:
        with progress.step("writing tokenizer.json"):
            save_serving_tokenizer(raw.tokenizer, staging / "tokenizer.json")
            tokenizer = TextTokenizer(staging / "tokenizer.json")
            family.check_tokenizer(model, tokenizer)
        with progress.step(f"exporting ONNX graph (opset {OPSET}, dynamic batch and sequence)"):
            inputs = family.export_graph(model, staging / "model.onnx")
            progress.note(f"model.onnx: {(staging / 'model.onnx').stat().st_size / 1e6:.1f} MB")
        ctx = GateContext(
            tokenizer, max_length, stride, pad_id, args.atol, progress, validation, args
        )

        def session(graph: Path) -> OnnxSession:
            return OnnxSession(graph, family.output, available_cpus())

        def parity_of(graph: Path) -> ParityReport:
            return family.parity(model, session(graph), ctx)

        def agreement_of(fp32: Path, variant: Path) -> Agreement:
            return family.agreement(model, session(fp32), session(variant), ctx)

        parity, variant, selfcheck = ship_graph(
            staging / "model.onnx",
            family.graph_spec(model),
            request,
            parity_of,
            agreement_of,
            progress,
            f"checking parity against PyTorch (atol {args.atol:g})",
            SampleSpec(staging / "tokenizer.json", family.output, max_length, pad_id),
            validation,
        )
        with progress.step("writing bundle.json"):
            common: dict[str, Any] = {
                "name": name,
                "version": args.version,
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
            }
            manifest = family.manifest(model, common, ctx)
            write_manifest(manifest, staging)
            verify_bundle(staging)  # the service's own loader must accept what we wrote
    print(f"bundle written to {args.out} in {progress.elapsed:.1f} s{family.done_note()}")
    return manifest
