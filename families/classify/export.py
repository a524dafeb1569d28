"""``python -m export classify``: any ``AutoModelForSequenceClassification`` → one bundle.

Multi-label (sigmoid, per-class thresholds, windows combined by max or mean) or single-label
(softmax, windows combined by the mean of their probabilities, optional abstain threshold), with
the problem type from ``config.json`` unless ``--problem-type`` says otherwise. Longformer is traced
through its blocked export form (global attention on CLS); other encoders through HF's module.
``python -m export postures`` is the Longformer, multi-label, posture-bundle specialisation
(:mod:`families.postures.export`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from export.checkpoint import RawCheckpoint
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.onnx_graph import OPSET, export_scores
from export.variants.gate import Agreement, classifier_agreement
from export.variants.ship import GraphSpec
from families.classify.model import Classifier, build_classifier
from families.classify.parity import check_parity, parity_lengths
from families.postures.blocked_longformer import export_onnx
from service.bundle import (
    PROBLEM_TYPES,
    ClassifierHead,
    ClassifyManifest,
    ClassifySpec,
    ManifestBase,
    ParityReport,
    schema_version_for,
)
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer

_HEAD_FLAGS: dict[str, ClassifierHead] = {"multi": "multi-label", "single": "single-label"}


def _gate_documents(
    tokenizer: TextTokenizer, texts: list[str], lengths: list[int], vocab: int, seed: int = 0
) -> list[NDArray[np.int64]]:
    """Content ids of the validation texts plus random documents at the parity lengths."""
    rng = np.random.default_rng(seed)
    special = tokenizer.num_special_tokens
    randoms = [rng.integers(5, vocab, size=max(1, n - special)) for n in lengths]
    return [e.ids for e in tokenizer.encode_batch(texts) if len(e)] + randoms


class ClassifyFamily(ExportFamily[Classifier]):
    command = "classify"
    summary = "export a sequence classifier (any encoder, multi- or single-label) to a bundle"
    output = "logits"
    default_atol = 1e-3
    atol_help = "max abs probability difference ONNX vs PyTorch"
    max_length_cap = 4096
    stride_divisor = 8
    agreement_unit = "(document, label) decisions at 0.5 (multi-label) or top classes (single)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--problem-type",
            choices=sorted(_HEAD_FLAGS),
            help="multi: sigmoid per class + thresholds; single: softmax + argmax (default: "
            "config.json's problem_type; unset means single)",
        )
        parser.add_argument(
            "--encoder-prefix",
            help="key prefix of the encoder weights in a .pt checkpoint (default: found among the "
            "architecture's own and bert/encoder/model/transformer)",
        )
        parser.add_argument(
            "--abstain-threshold",
            type=float,
            help="single-label: answer no class below this top probability (better: "
            "`python -m export calibrate` on a labelled validation split)",
        )
        self._add_shared_arguments(parser, "multi-label: ")

    def _add_shared_arguments(self, parser: argparse.ArgumentParser, scope: str) -> None:
        parser.add_argument(
            "--aggregation",
            choices=["max", "mean"],
            help=f"{scope}how window probabilities of a long text combine (default: max; "
            "single-label heads always use the mean)",
        )
        parser.add_argument(
            "--parity-lengths",
            type=lambda v: tuple(int(x) for x in v.split(",")),
            help="comma-separated lengths for the parity gate "
            "(default: 1,100,511,512,513,1500,4095 and the max, up to the max)",
        )

    def head_of(self, args: argparse.Namespace) -> ClassifierHead | None:
        return _HEAD_FLAGS[args.problem_type] if args.problem_type else None

    def build(self, raw: RawCheckpoint, args: argparse.Namespace) -> Classifier:
        classifier = build_classifier(raw, self.head_of(args), args.encoder_prefix)
        if classifier.head == "single-label" and args.aggregation == "max":
            raise ExportError(
                "a single-label head combines windows by the mean of their probabilities; "
                "--aggregation max applies to multi-label heads"
            )
        abstain = getattr(args, "abstain_threshold", None)
        if abstain is not None and (classifier.head != "single-label" or not 0 <= abstain <= 1):
            raise ExportError("--abstain-threshold needs a single-label head and a value in [0, 1]")
        return classifier

    def position_limit(self, model: Classifier) -> int:
        return model.position_limit()

    def graph_spec(self, model: Classifier) -> GraphSpec:
        return GraphSpec.of(model.model.config)

    def check_tokenizer(self, model: Classifier, tokenizer: TextTokenizer) -> None:
        if len(tokenizer.prefix_ids) != 1:
            raise ExportError(
                "the tokenizer must put exactly one CLS token first (the head reads it"
                f"{', and it has global attention' if model.longformer else ''})"
            )

    def export_graph(self, model: Classifier, path: Path) -> list[str]:
        if model.longformer:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Constant folding")
                export_onnx(model.traced_module(), path, OPSET)  # type: ignore[arg-type]
        else:
            vocab = int(model.model.config.vocab_size)
            export_scores(
                model.traced_module(), model.input_names, path, self.output, vocab, {0: "batch"}
            )
        return model.input_names

    def parity(
        self, model: Classifier, session: InferenceSession, ctx: GateContext
    ) -> ParityReport:
        lengths = parity_lengths(ctx.max_length, ctx.args.parity_lengths)
        ctx.progress.note(f"parity lengths {lengths}")
        return check_parity(model, session, ctx.tokenizer, lengths, ctx.atol, ctx.progress)

    def aggregation(self, model: Classifier, args: argparse.Namespace) -> str:
        return "mean" if model.head == "single-label" else args.aggregation or "max"

    def agreement(
        self, model: Classifier, fp32: InferenceSession, variant: InferenceSession, ctx: GateContext
    ) -> Agreement:
        lengths = parity_lengths(ctx.max_length, ctx.args.parity_lengths)
        vocab = int(model.model.config.vocab_size)
        return classifier_agreement(
            fp32,
            variant,
            ctx.tokenizer,
            _gate_documents(ctx.tokenizer, ctx.validation, lengths, vocab),
            model.head,
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.stride,
            self.aggregation(model, ctx.args),
            ctx.pad_id,
        )

    def spec(self, model: Classifier, args: argparse.Namespace) -> ClassifySpec:
        multi = model.head == "multi-label"
        return ClassifySpec(
            head=model.head,
            problem_type=PROBLEM_TYPES[model.head],
            thresholds=[0.5] * len(model.labels) if multi else None,
            global_threshold=0.5 if multi else None,
            abstain_threshold=getattr(args, "abstain_threshold", None),
            aggregation=self.aggregation(model, args),
            architecture=model.architecture,
            global_attention=model.longformer,
        )

    def manifest(self, model: Classifier, common: dict[str, Any], ctx: GateContext) -> ManifestBase:
        spec = self.spec(model, ctx.args)
        draft = ClassifyManifest.model_construct(**common, classify=spec)
        return ClassifyManifest(**common, classify=spec, schema_version=schema_version_for(draft))

    def done_note(self) -> str:
        return (
            " (multi-label thresholds are 0.5 and single-label heads never abstain until "
            "`python -m export calibrate`)"
        )
