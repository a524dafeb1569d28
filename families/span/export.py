"""``python -m export span``: an encoder with start / end / inside span heads → a span bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from export.calibration.command import CalibrateOptions
from export.calibration.options import Settings
from export.checkpoint import RawCheckpoint
from export.cli_options import Flag
from export.encoders import position_limit
from export.family import ExportFamily, GateContext
from export.onnx_graph import export_scores
from export.options import ExportOptions
from export.variants.gate import Agreement
from export.variants.ship import GraphSpec
from families.span.decoding import SpanRule
from families.span.model import SpanModel, build_span_model
from families.span.parity import SAMPLE_TEXTS, check_parity, span_agreement
from families.span.spec import OUTPUT, PARTS, SpanManifest, SpanSpec, SpanThresholds
from service.bundle import ParityReport
from service.runtime.session import InferenceSession


def probability(value: str) -> float:
    """A command-line cut: a number in [0, 1]."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{value} is not a probability in [0, 1]")
    return number


def _key_help(part: str) -> str:
    return (
        f"module name of the {part} head's weight/bias, e.g. {part}_head (default: the one "
        f"linear module outside the encoder whose name says {part})"
    )


def _cut_help(part: str) -> str:
    return f"cut of the {part} probabilities of every type (default: --threshold)"


Key = Annotated[str | None, Flag(metavar="MODULE")]
Cut = Annotated[float, Flag(parse=probability)]
PartCut = Annotated[float | None, Flag(parse=probability)]


class SpanOptions(ExportOptions):
    """``python -m export span`` / ``export_bundle("span", SpanOptions(...))``."""

    max_length_cap: ClassVar[int] = 512
    stride_divisor: ClassVar[int] = 4
    agreement_unit: ClassVar[str] = "(word, type, start/end/inside) threshold decisions"

    atol: float = Field(
        1e-4, description="max abs difference of start/end/inside probabilities, ONNX vs PyTorch"
    )
    start_key: Key = Field(None, description=_key_help("start"))
    end_key: Key = Field(None, description=_key_help("end"))
    inside_key: Key = Field(None, description=_key_help("inside"))
    encoder_prefix: str | None = Field(
        None,
        description="key prefix of the encoder weights, e.g. bert (default: found among the "
        "architecture's own and bert/encoder/model/transformer)",
    )
    threshold: Cut = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="cut of every type's start, end and inside probabilities until calibrated "
        "(`python -m export calibrate`)",
    )
    start_threshold: PartCut = Field(None, ge=0.0, le=1.0, description=_cut_help("start"))
    end_threshold: PartCut = Field(None, ge=0.0, le=1.0, description=_cut_help("end"))
    inside_threshold: PartCut = Field(None, ge=0.0, le=1.0, description=_cut_help("inside"))
    nested: bool = Field(
        False,
        description="a start inside an accepted span of the same type opens a nested span "
        "(default: spans of one type never overlap; different types always may)",
    )


class SpanFamily(ExportFamily[SpanModel, SpanOptions]):
    command = "span"
    summary = "export an encoder with start/end/inside span heads (thresholds) to an ONNX bundle"
    options = SpanOptions
    manifest_type = SpanManifest
    output = OUTPUT
    calibrates = True
    calibration_help = (
        "one cut per entity type for its start, end and inside probabilities, from "
        '{"text": ..., "entities": [{"start": ..., "end": ..., "label": ...}]} lines '
        "(exact span F1; --target-precision is not used)."
    )

    def build(self, raw: RawCheckpoint, options: SpanOptions) -> SpanModel:
        given = {part: getattr(options, f"{part}_key") for part in PARTS}
        return build_span_model(raw, given, options.encoder_prefix)

    def position_limit(self, model: SpanModel) -> int:
        return position_limit(model.encoder)

    def graph_spec(self, model: SpanModel) -> GraphSpec:
        return GraphSpec.of(model.encoder.config)

    def export_graph(self, model: SpanModel, path: Path) -> list[str]:
        vocab = int(model.encoder.config.vocab_size)
        export_scores(model.scores, model.input_names, path, self.output, vocab)
        return model.input_names

    def spec(self, model: SpanModel, options: SpanOptions) -> SpanSpec:
        cut = {part: getattr(options, f"{part}_threshold") for part in PARTS}
        one = SpanThresholds(**{p: options.threshold if c is None else c for p, c in cut.items()})
        return SpanSpec(
            inside=model.inside, thresholds=[one] * len(model.labels), nested=options.nested
        )

    def rule(self, model: SpanModel, ctx: GateContext[SpanOptions]) -> SpanRule:
        return SpanRule.from_spec(self.spec(model, ctx.options))

    def parity(
        self, model: SpanModel, session: InferenceSession, ctx: GateContext[SpanOptions]
    ) -> ParityReport:
        report = check_parity(
            model,
            self.rule(model, ctx),
            session,
            ctx.tokenizer,
            ctx.max_length,
            ctx.pad_id,
            ctx.atol,
        )
        spans = sum(int(d["reference_spans"]) for d in report.details)
        ctx.progress.note(
            f"max abs probability diff {report.max_abs_diff:.2e}, identical spans in "
            f"{report.tag_agreement:.0%} of {report.cases} sequences ({spans} reference spans)"
        )
        return report

    def agreement(
        self,
        model: SpanModel,
        fp32: InferenceSession,
        variant: InferenceSession,
        ctx: GateContext[SpanOptions],
    ) -> Agreement:
        return span_agreement(
            fp32,
            variant,
            ctx.tokenizer,
            self.rule(model, ctx),
            [*SAMPLE_TEXTS, *ctx.validation],
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.pad_id,
        )

    def sections(self, model: SpanModel, ctx: GateContext[SpanOptions]) -> dict[str, BaseModel]:
        return {"span": self.spec(model, ctx.options)}

    def done_note(self) -> str:
        return "; calibrate its thresholds with `python -m export calibrate --bundle ... --data`"

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        from families.span.calibrate import run_span_calibration

        return run_span_calibration(
            options.bundle, options.data, settings, options.report, not options.no_plots
        )


FAMILY = SpanFamily()
