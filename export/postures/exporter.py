"""``python -m export postures``: Longformer classifier → bundle with one shape-generic graph.

The graph is traced from :class:`ExportableLongformer` (blocked sliding-window attention with the
HF weights), not from HF's own module, whose ONNX export is shape-specific and slow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from export.atomic import staged_directory
from export.checkpoint import load_checkpoint, save_serving_tokenizer
from export.errors import ExportError
from export.naming import bundle_name
from export.onnx_graph import OPSET
from export.postures.blocked_longformer import ExportableLongformer, export_onnx
from export.postures.model import build_longformer
from export.postures.parity import check_parity, parity_lengths
from export.progress import Progress
from export.selfcheck import SampleSpec
from export.variants.gate import Agreement, posture_agreement
from export.variants.request import VariantRequest, read_validation_texts
from export.variants.ship import GraphSpec, ship_graph, variant_steps
from export.versions import export_versions
from service.bundle import (
    ExportInfo,
    OnnxInfo,
    ParityReport,
    PostureManifest,
    PostureSpec,
    TokenizerInfo,
    sha256_of,
    verify_bundle,
    write_manifest,
)
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import TextTokenizer

OUTPUT = "logits"


@dataclass(frozen=True)
class PostureExportOptions:
    checkpoint: Path
    out: Path
    base: Path | None = None
    labels: Path | None = None
    name: str | None = None
    version: str = "1"
    max_length: int | None = None
    stride: int | None = None
    aggregation: Literal["max", "mean"] = "max"
    atol: float = 1e-3
    parity_lengths: tuple[int, ...] | None = None
    force: bool = False
    trust_checkpoint: bool = False
    variant: VariantRequest = field(default_factory=VariantRequest)


def _lengths(limit: int, options: PostureExportOptions) -> tuple[int, int]:
    max_length = options.max_length or min(limit, 4096)
    if not 8 <= max_length <= limit:
        raise ExportError(f"--max-length {max_length} must be between 8 and the model's {limit}")
    stride = options.stride if options.stride is not None else max_length // 8
    if not 0 <= stride < max_length - 2:
        raise ExportError(f"--stride {stride} must be >= 0 and < max length - 2")
    return max_length, stride


def _gate_documents(
    tokenizer: TextTokenizer, texts: list[str], lengths: list[int], vocab: int, seed: int = 0
) -> list[NDArray[np.int64]]:
    """Content ids of the validation texts plus random documents at the parity lengths."""
    rng = np.random.default_rng(seed)
    special = tokenizer.num_special_tokens
    randoms = [rng.integers(5, vocab, size=max(1, n - special)) for n in lengths]
    return [e.ids for e in tokenizer.encode_batch(texts) if len(e)] + randoms


def export_postures(options: PostureExportOptions) -> PostureManifest:
    options.variant.check()
    validation = read_validation_texts(options.variant.validation)
    progress = Progress(total_steps=5 + variant_steps(options.variant))
    with progress.step(f"loading checkpoint {options.checkpoint}"):
        raw = load_checkpoint(
            options.checkpoint, options.base, options.labels, options.trust_checkpoint
        )
        hf_model = build_longformer(raw)
        blocked = ExportableLongformer(hf_model)
        max_length, stride = _lengths(blocked.max_length, options)
        name = bundle_name(options.name, options.out)
        progress.note(f"{len(raw.labels)} labels; windows of {max_length} tokens, stride {stride}")
    with staged_directory(options.out, overwrite=options.force) as staging:
        with progress.step("writing tokenizer.json"):
            save_serving_tokenizer(raw.tokenizer, staging / "tokenizer.json")
            tokenizer = TextTokenizer(staging / "tokenizer.json")
            if len(tokenizer.prefix_ids) != 1:
                raise ExportError(
                    "the tokenizer must put exactly one CLS token first (global attention)"
                )
        with progress.step(f"exporting blocked-attention ONNX graph (opset {OPSET})"):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Constant folding")
                export_onnx(blocked, staging / "model.onnx", OPSET)
            progress.note(f"model.onnx: {(staging / 'model.onnx').stat().st_size / 1e6:.1f} MB")
        lengths = parity_lengths(max_length, options.parity_lengths)

        def parity_of(graph: Path) -> ParityReport:
            session = OnnxSession(graph, OUTPUT, available_cpus())
            return check_parity(
                hf_model, session, lengths, tokenizer.prefix_ids[0], options.atol, progress
            )

        def agreement_of(fp32: Path, variant: Path) -> Agreement:
            return posture_agreement(
                OnnxSession(fp32, OUTPUT, available_cpus()),
                OnnxSession(variant, OUTPUT, available_cpus()),
                tokenizer,
                _gate_documents(tokenizer, validation, lengths, int(raw.config.vocab_size)),
                np.full(len(raw.labels), 0.5),
                max_length - tokenizer.num_special_tokens,
                stride,
                options.aggregation,
                int(raw.config.pad_token_id or 0),
            )

        config = hf_model.config
        parity, variant, selfcheck = ship_graph(
            staging / "model.onnx",
            GraphSpec("longformer", int(config.num_attention_heads), int(config.hidden_size)),
            options.variant,
            parity_of,
            agreement_of,
            progress,
            f"checking parity against HF Longformer at lengths {lengths}",
            SampleSpec(
                staging / "tokenizer.json", OUTPUT, max_length, int(raw.config.pad_token_id or 0)
            ),
        )
        with progress.step("writing bundle.json"):
            manifest = PostureManifest(
                schema_version=3,
                name=name,
                version=options.version,
                labels=raw.labels,
                onnx=OnnxInfo(
                    sha256=sha256_of(staging / "model.onnx"),
                    opset=OPSET,
                    inputs=["input_ids", "attention_mask"],
                    output=OUTPUT,
                ),
                tokenizer=TokenizerInfo(
                    max_length=max_length,
                    stride=stride,
                    pad_token_id=int(raw.config.pad_token_id or 0),
                    sha256=sha256_of(staging / "tokenizer.json"),
                ),
                postures=PostureSpec(
                    thresholds=[0.5] * len(raw.labels), aggregation=options.aggregation
                ),
                export=ExportInfo(
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    source=raw.source,
                    duration_s=round(progress.elapsed, 1),
                    versions=export_versions(),
                ),
                parity=parity,
                variant=variant,
                selfcheck=selfcheck,
            )
            write_manifest(manifest, staging)
            verify_bundle(staging)
    print(
        f"bundle written to {options.out} in {progress.elapsed:.1f} s "
        f"(thresholds are 0.5 until `python -m export calibrate`)"
    )
    return manifest
