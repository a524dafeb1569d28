"""``python -m export ner``: token taggers (``ner/crf``, ``ner/softmax``) on any encoder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from export.encoders import position_limit
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.onnx_graph import export_scores
from export.variants.gate import Agreement, ner_agreement
from export.variants.ship import GraphSpec
from families.ner.model import Tagger, build_tagger
from families.ner.parity import SAMPLE_TEXTS, check_parity
from service.bundle import CrfScores, NerManifest, NerSpec, ParityReport, schema_version_for
from service.ner.decoding import WordDecoder
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer


class NerFamily(ExportFamily[Tagger]):
    command = "ner"
    summary = "export a token tagger (CRF or softmax head, any encoder) to an ONNX bundle"
    output = "emissions"
    default_atol = 1e-4
    atol_help = "max abs difference of emissions / log-probabilities, ONNX vs PyTorch"
    max_length_cap = 512
    stride_divisor = 4
    agreement_unit = "word tags"
    extra_versions = ("pytorch-crf",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--head",
            choices=["crf", "softmax"],
            help="crf: emissions + torchcrf.CRF under crf.*; softmax: a token classifier "
            "(default: crf if the weights hold crf.* keys, else softmax)",
        )
        parser.add_argument(
            "--encoder-prefix",
            help="key prefix of the encoder weights, e.g. bert (default: found among the "
            "architecture's own and bert/encoder/model/transformer)",
        )
        parser.add_argument(
            "--no-bio-constraints",
            dest="constrain_transitions",
            action="store_false",
            help="decode without forbidding the tag scheme's invalid moves (softmax heads: "
            "per-word argmax)",
        )
        parser.add_argument(
            "--subtokens",
            choices=["first", "all"],
            default="first",
            help="how training placed labels: first sub-token of each word, or every sub-token "
            "(recorded; the word's tag is read at its first sub-token either way)",
        )
        parser.add_argument(
            "--crf-positions",
            choices=["words", "cls+words"],
            default="words",
            help="what the CRF ran over in training: the words, or [CLS] (tag O) + the words",
        )

    def build(self, raw: Any, args: argparse.Namespace) -> Tagger:
        tagger = build_tagger(raw, args.head, args.encoder_prefix)
        if args.crf_positions != "words" and tagger.head != "crf":
            raise ExportError("--crf-positions cls+words needs a CRF head")
        tagger.crf_positions = args.crf_positions
        return tagger

    def position_limit(self, model: Tagger) -> int:
        return position_limit(model.model)

    def graph_spec(self, model: Tagger) -> GraphSpec:
        return GraphSpec.of(model.model.config)

    def check_tokenizer(self, model: Tagger, tokenizer: TextTokenizer) -> None:
        if model.crf_positions == "cls+words" and not tokenizer.prefix_ids:
            raise ExportError("--crf-positions cls+words needs a tokenizer that adds a CLS token")

    def export_graph(self, model: Tagger, path: Path) -> list[str]:
        vocab = int(model.model.config.vocab_size)
        export_scores(model.scores, model.input_names, path, self.output, vocab)
        return model.input_names

    def spec(self, model: Tagger, args: argparse.Namespace) -> NerSpec:
        crf = model.crf
        return NerSpec(
            tag_scheme=model.scheme,
            constrain_transitions=args.constrain_transitions,
            head=model.head,
            crf=None
            if crf is None
            else CrfScores(
                start=crf.start_transitions.tolist(),
                end=crf.end_transitions.tolist(),
                transitions=crf.transitions.tolist(),
            ),
            subtokens=args.subtokens,
            crf_positions=model.crf_positions,
        )

    def decoder(self, model: Tagger, ctx: GateContext) -> WordDecoder:
        return WordDecoder.from_spec(self.spec(model, ctx.args), model.labels)

    def parity(self, model: Tagger, session: InferenceSession, ctx: GateContext) -> ParityReport:
        report = check_parity(
            model,
            self.decoder(model, ctx),
            session,
            ctx.tokenizer,
            ctx.max_length,
            ctx.pad_id,
            ctx.atol,
        )
        ctx.progress.note(
            f"max abs score diff {report.max_abs_diff:.2e}, tag agreement "
            f"{report.tag_agreement:.0%} over {report.cases} sequences"
        )
        return report

    def agreement(
        self, model: Tagger, fp32: InferenceSession, variant: InferenceSession, ctx: GateContext
    ) -> Agreement:
        return ner_agreement(
            fp32,
            variant,
            ctx.tokenizer,
            self.decoder(model, ctx),
            [*SAMPLE_TEXTS, *ctx.validation],
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.pad_id,
        )

    def manifest(self, model: Tagger, common: dict[str, Any], ctx: GateContext) -> NerManifest:
        draft = NerManifest.model_construct(**common, ner=self.spec(model, ctx.args))
        return NerManifest(
            **common, ner=self.spec(model, ctx.args), schema_version=schema_version_for(draft)
        )
