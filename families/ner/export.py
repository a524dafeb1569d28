"""``python -m export ner``: token taggers (``ner/crf``, ``ner/softmax``) on any encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field

from export.checkpoint import RawCheckpoint
from export.cli_options import Flag
from export.encoders import position_limit
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.onnx_graph import export_scores
from export.options import ExportOptions
from export.variants.gate import Agreement, ner_agreement
from export.variants.ship import GraphSpec
from families.ner.decoding import WordDecoder
from families.ner.model import Head, Tagger, build_tagger
from families.ner.parity import SAMPLE_TEXTS, check_parity
from families.ner.spec import CrfScores, NerManifest, NerSpec
from service.bundle import ParityReport
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer


class NerOptions(ExportOptions):
    """``python -m export ner`` / ``export_bundle("ner", NerOptions(...))``."""

    max_length_cap: ClassVar[int] = 512
    stride_divisor: ClassVar[int] = 4
    agreement_unit: ClassVar[str] = "word tags"

    atol: float = Field(
        1e-4, description="max abs difference of emissions / log-probabilities, ONNX vs PyTorch"
    )
    head: Head | None = Field(
        None,
        description="crf: emissions + torchcrf.CRF under crf.*; softmax: a token classifier "
        "(default: crf if the weights hold crf.* keys, else softmax)",
    )
    encoder_prefix: str | None = Field(
        None,
        description="key prefix of the encoder weights, e.g. bert (default: found among the "
        "architecture's own and bert/encoder/model/transformer)",
    )
    constrain_transitions: Annotated[bool, Flag("--no-bio-constraints")] = Field(
        True,
        description="decode without forbidding the tag scheme's invalid moves (softmax heads: "
        "per-word argmax)",
    )
    subtokens: Annotated[Literal["first", "all"], Flag(show_default=False)] = Field(
        "first",
        description="how training placed labels: first sub-token of each word, or every sub-token "
        "(recorded; the word's tag is read at its first sub-token either way)",
    )
    crf_positions: Annotated[Literal["words", "cls+words"], Flag(show_default=False)] = Field(
        "words",
        description="what the CRF ran over in training: the words, or [CLS] (tag O) + the words",
    )


class NerFamily(ExportFamily[Tagger, NerOptions]):
    command = "ner"
    summary = "export a token tagger (CRF or softmax head, any encoder) to an ONNX bundle"
    options = NerOptions
    manifest_type = NerManifest
    output = "emissions"
    extra_versions = ("pytorch-crf",)

    def build(self, raw: RawCheckpoint, options: NerOptions) -> Tagger:
        tagger = build_tagger(raw, options.head, options.encoder_prefix)
        if options.crf_positions != "words" and tagger.head != "crf":
            raise ExportError("--crf-positions cls+words needs a CRF head")
        tagger.crf_positions = options.crf_positions
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

    def spec(self, model: Tagger, options: NerOptions) -> NerSpec:
        crf = model.crf
        return NerSpec(
            tag_scheme=model.scheme,
            constrain_transitions=options.constrain_transitions,
            head=model.head,
            crf=None
            if crf is None
            else CrfScores(
                start=crf.start_transitions.tolist(),
                end=crf.end_transitions.tolist(),
                transitions=crf.transitions.tolist(),
            ),
            subtokens=options.subtokens,
            crf_positions=model.crf_positions,
        )

    def decoder(self, model: Tagger, ctx: GateContext[NerOptions]) -> WordDecoder:
        return WordDecoder.from_spec(self.spec(model, ctx.options), model.labels)

    def parity(
        self, model: Tagger, session: InferenceSession, ctx: GateContext[NerOptions]
    ) -> ParityReport:
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
        self,
        model: Tagger,
        fp32: InferenceSession,
        variant: InferenceSession,
        ctx: GateContext[NerOptions],
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

    def sections(self, model: Tagger, ctx: GateContext[NerOptions]) -> dict[str, BaseModel]:
        return {"ner": self.spec(model, ctx.options)}


FAMILY = NerFamily()
