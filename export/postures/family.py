"""``python -m export postures``: Longformer multi-label classifier → one shape-generic graph.

The graph is traced from :class:`ExportableLongformer` (blocked sliding-window attention with the
HF weights), not from HF's own module, whose ONNX export is shape-specific and slow.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from transformers import LongformerForSequenceClassification

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.onnx_graph import OPSET
from export.postures.blocked_longformer import ExportableLongformer, export_onnx
from export.postures.model import build_longformer
from export.postures.parity import check_parity, parity_lengths
from export.variants.gate import Agreement, posture_agreement
from export.variants.ship import GraphSpec
from service.bundle import ParityReport, PostureManifest, PostureSpec, schema_version_for
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer


def _gate_documents(
    tokenizer: TextTokenizer, texts: list[str], lengths: list[int], vocab: int, seed: int = 0
) -> list[NDArray[np.int64]]:
    """Content ids of the validation texts plus random documents at the parity lengths."""
    rng = np.random.default_rng(seed)
    special = tokenizer.num_special_tokens
    randoms = [rng.integers(5, vocab, size=max(1, n - special)) for n in lengths]
    return [e.ids for e in tokenizer.encode_batch(texts) if len(e)] + randoms


class PostureFamily(ExportFamily[LongformerForSequenceClassification]):
    command = "postures"
    summary = "export a Longformer multi-label classifier to a bundle"
    output = "logits"
    default_atol = 1e-3
    atol_help = "max abs probability difference ONNX vs PyTorch"
    max_length_cap = 4096
    stride_divisor = 8
    agreement_unit = "(document, label) decisions at threshold 0.5"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--aggregation",
            choices=["max", "mean"],
            default="max",
            help="how window probabilities of a long document combine (default: max)",
        )
        parser.add_argument(
            "--parity-lengths",
            type=lambda v: tuple(int(x) for x in v.split(",")),
            help="comma-separated lengths for the parity gate "
            "(default: 1,100,511,512,513,1500,4095 and the max)",
        )

    def build(
        self, raw: RawCheckpoint, args: argparse.Namespace
    ) -> LongformerForSequenceClassification:
        return build_longformer(raw)

    def position_limit(self, model: LongformerForSequenceClassification) -> int:
        return ExportableLongformer(model).max_length

    def graph_spec(self, model: LongformerForSequenceClassification) -> GraphSpec:
        config = model.config
        return GraphSpec("longformer", int(config.num_attention_heads), int(config.hidden_size))

    def check_tokenizer(
        self, model: LongformerForSequenceClassification, tokenizer: TextTokenizer
    ) -> None:
        if len(tokenizer.prefix_ids) != 1:
            raise ExportError(
                "the tokenizer must put exactly one CLS token first (global attention)"
            )

    def export_graph(self, model: LongformerForSequenceClassification, path: Path) -> list[str]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Constant folding")
            export_onnx(ExportableLongformer(model), path, OPSET)
        return ["input_ids", "attention_mask"]

    def parity(
        self,
        model: LongformerForSequenceClassification,
        session: InferenceSession,
        ctx: GateContext,
    ) -> ParityReport:
        lengths = parity_lengths(ctx.max_length, ctx.args.parity_lengths)
        ctx.progress.note(f"parity lengths {lengths}")
        cls_id = ctx.tokenizer.prefix_ids[0]
        return check_parity(model, session, lengths, cls_id, ctx.atol, ctx.progress)

    def agreement(
        self,
        model: LongformerForSequenceClassification,
        fp32: InferenceSession,
        variant: InferenceSession,
        ctx: GateContext,
    ) -> Agreement:
        lengths = parity_lengths(ctx.max_length, ctx.args.parity_lengths)
        vocab = int(model.config.vocab_size)
        return posture_agreement(
            fp32,
            variant,
            ctx.tokenizer,
            _gate_documents(ctx.tokenizer, ctx.validation, lengths, vocab),
            np.full(int(model.config.num_labels), 0.5),
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.stride,
            ctx.args.aggregation,
            ctx.pad_id,
        )

    def manifest(
        self,
        model: LongformerForSequenceClassification,
        common: dict[str, Any],
        ctx: GateContext,
    ) -> PostureManifest:
        spec = PostureSpec(
            thresholds=[0.5] * len(common["labels"]), aggregation=ctx.args.aggregation
        )
        draft = PostureManifest.model_construct(**common, postures=spec)
        return PostureManifest(**common, postures=spec, schema_version=schema_version_for(draft))

    def done_note(self) -> str:
        return " (thresholds are 0.5 until `python -m export calibrate`)"
