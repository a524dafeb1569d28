"""``python -m export ner``: BERT-CRF checkpoint → bundle (ONNX + tokenizer + manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from export.atomic import staged_directory
from export.checkpoint import load_checkpoint, save_serving_tokenizer
from export.errors import ExportError
from export.naming import bundle_name
from export.ner.model import BertCrf, build_bert_crf
from export.ner.parity import SAMPLE_TEXTS, check_parity
from export.onnx_graph import OPSET, export_logits
from export.progress import Progress
from export.selfcheck import SampleSpec
from export.variants.gate import Agreement, ner_agreement
from export.variants.request import VariantRequest, read_validation_texts
from export.variants.ship import GraphSpec, ship_graph, variant_steps
from export.versions import export_versions
from service.bundle import (
    CrfScores,
    ExportInfo,
    NerManifest,
    NerSpec,
    OnnxInfo,
    ParityReport,
    TokenizerInfo,
    sha256_of,
    verify_bundle,
    write_manifest,
)
from service.ner.crf import CrfParams
from service.ner.tagging import BioScheme
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import TextTokenizer

OUTPUT = "emissions"


@dataclass(frozen=True)
class NerExportOptions:
    checkpoint: Path
    out: Path
    base: Path | None = None
    labels: Path | None = None
    name: str | None = None
    version: str = "1"
    max_length: int | None = None
    stride: int | None = None
    constrain_transitions: bool = True
    atol: float = 1e-4
    force: bool = False
    trust_checkpoint: bool = False
    variant: VariantRequest = field(default_factory=VariantRequest)


def _lengths(model: BertCrf, options: NerExportOptions) -> tuple[int, int]:
    limit = int(model.emitter.config.max_position_embeddings)
    max_length = options.max_length or min(limit, 512)
    if not 8 <= max_length <= limit:
        raise ExportError(f"--max-length {max_length} must be between 8 and the model's {limit}")
    stride = options.stride if options.stride is not None else max_length // 4
    if not 0 <= stride < max_length - 2:
        raise ExportError(f"--stride {stride} must be >= 0 and < max length - 2")
    return max_length, stride


def _dummy_inputs(names: Sequence[str]) -> dict[str, torch.Tensor]:
    ids = torch.randint(1000, 2000, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    values = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {n: values[n] for n in names}


def _served_crf(model: BertCrf, labels: list[str], constrained: bool) -> CrfParams:
    """The CRF scores exactly as the service decodes with them (BIO penalties included)."""
    crf = model.crf
    params = CrfParams.from_lists(
        crf.start_transitions.tolist(), crf.end_transitions.tolist(), crf.transitions.tolist()
    )
    return params.with_penalties(*BioScheme.parse(labels).penalties()) if constrained else params


def export_ner(options: NerExportOptions) -> NerManifest:
    options.variant.check()
    validation = read_validation_texts(options.variant.validation)
    progress = Progress(total_steps=5 + variant_steps(options.variant))
    with progress.step(f"loading checkpoint {options.checkpoint}"):
        raw = load_checkpoint(
            options.checkpoint, options.base, options.labels, options.trust_checkpoint
        )
        model = build_bert_crf(raw)
        max_length, stride = _lengths(model, options)
        name = bundle_name(options.name, options.out)
        input_names = [
            n
            for n in ("input_ids", "attention_mask", "token_type_ids")
            if n in raw.tokenizer.model_input_names
        ]
        progress.note(f"{len(raw.labels)} tags: {' '.join(raw.labels)}")
    with staged_directory(options.out, overwrite=options.force) as staging:
        with progress.step("writing tokenizer.json"):
            save_serving_tokenizer(raw.tokenizer, staging / "tokenizer.json")
        with progress.step(f"exporting ONNX graph (opset {OPSET}, dynamic batch and sequence)"):
            export_logits(
                model.emitter, _dummy_inputs(input_names), staging / "model.onnx", OUTPUT, True
            )
            size_mb = (staging / "model.onnx").stat().st_size / 1e6
            progress.note(f"model.onnx: {size_mb:.1f} MB")
        tokenizer = TextTokenizer(staging / "tokenizer.json")

        def parity_of(graph: Path) -> ParityReport:
            session = OnnxSession(graph, OUTPUT, available_cpus())
            parity = check_parity(model, session, tokenizer, max_length, options.atol)
            progress.note(
                f"max abs emission diff {parity.max_abs_diff:.2e}, tag agreement "
                f"{parity.tag_agreement:.0%} over {parity.cases} sequences"
            )
            return parity

        def agreement_of(fp32: Path, variant: Path) -> Agreement:
            return ner_agreement(
                OnnxSession(fp32, OUTPUT, available_cpus()),
                OnnxSession(variant, OUTPUT, available_cpus()),
                tokenizer,
                _served_crf(model, raw.labels, options.constrain_transitions),
                [*SAMPLE_TEXTS, *validation],
                max_length - tokenizer.num_special_tokens,
                int(raw.tokenizer.pad_token_id or 0),
            )

        config = model.emitter.config
        parity, variant, selfcheck = ship_graph(
            staging / "model.onnx",
            GraphSpec("bert", int(config.num_attention_heads), int(config.hidden_size)),
            options.variant,
            parity_of,
            agreement_of,
            progress,
            f"checking parity against PyTorch (atol {options.atol:g})",
            SampleSpec(
                staging / "tokenizer.json",
                OUTPUT,
                max_length,
                int(raw.tokenizer.pad_token_id or 0),
            ),
        )
        with progress.step("writing bundle.json"):
            manifest = NerManifest(
                schema_version=3,
                name=name,
                version=options.version,
                labels=raw.labels,
                onnx=OnnxInfo(
                    sha256=sha256_of(staging / "model.onnx"),
                    opset=OPSET,
                    inputs=input_names,
                    output=OUTPUT,
                ),
                tokenizer=TokenizerInfo(
                    max_length=max_length,
                    stride=stride,
                    pad_token_id=int(raw.tokenizer.pad_token_id or 0),
                    sha256=sha256_of(staging / "tokenizer.json"),
                ),
                ner=NerSpec(
                    constrain_transitions=options.constrain_transitions,
                    crf=CrfScores(
                        start=model.crf.start_transitions.tolist(),
                        end=model.crf.end_transitions.tolist(),
                        transitions=model.crf.transitions.tolist(),
                    ),
                ),
                export=ExportInfo(
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    source=raw.source,
                    duration_s=round(progress.elapsed, 1),
                    versions=export_versions(("pytorch-crf",)),
                ),
                parity=parity,
                variant=variant,
                selfcheck=selfcheck,
            )
            write_manifest(manifest, staging)
            verify_bundle(staging)  # the service's own loader must accept what we wrote
    print(f"bundle written to {options.out} in {progress.elapsed:.1f} s")
    return manifest
