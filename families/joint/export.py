"""``python -m export joint``: one encoder with N sequence heads and one token head → one graph.

The export half of the joint family (may import torch); the serving half is
:mod:`families.joint.runtime`. The graph has one output per head plus the packed output the
service reads (:mod:`families.joint.spec`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, ClassVar, Literal, cast, get_args

import torch
from pydantic import BaseModel, Field, field_validator

from export.calibration.command import CalibrateOptions
from export.calibration.options import Settings
from export.checkpoint import RawCheckpoint, read_labels_file
from export.cli_options import Flag
from export.encoders import position_limit
from export.family import ExportFamily, GateContext
from export.onnx_graph import OPSET, dummy_inputs
from export.options import ExportOptions
from export.variants.gate import Agreement
from export.variants.ship import GraphSpec
from families.classify.spec import PROBLEM_TYPES, ClassifierHead, ClassifySpec
from families.joint.model import HeadOptions, JointModel, build_joint
from families.joint.parity import check_parity, joint_agreement
from families.joint.spec import (
    PACKED_OUTPUT,
    JointManifest,
    JointSpec,
    Pooling,
    SequenceHead,
    TokenHead,
)
from families.ner.decoding import WordDecoder
from families.ner.parity import SAMPLE_TEXTS
from families.ner.spec import CrfScores, NerSpec
from service.bundle import ParityReport
from service.runtime.session import InferenceSession

POOLINGS: tuple[str, ...] = get_args(Pooling)
KINDS = {"single": "single-label", "single-label": "single-label",
         "multi": "multi-label", "multi-label": "multi-label"}  # fmt: skip


def _pair(value: str, flag: str) -> tuple[str, str]:
    """``NAME=VALUE`` split, anything else refused by flag."""
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"{flag} {value!r}: expected NAME=VALUE")
    return name, rest


class JointOptions(ExportOptions):
    """``python -m export joint`` / ``export_bundle("joint", JointOptions(...))``. Every head
    option is found in the checkpoint when not given; the repeatable ``NAME=VALUE`` options are
    checked here and read through :meth:`head_options`."""

    max_length_cap: ClassVar[int] = 512
    stride_divisor: ClassVar[int] = 4
    agreement_unit: ClassVar[str] = "decisions of every head (word tags + head classes)"

    atol: float = Field(
        1e-4,
        description="max abs difference of token scores and head probabilities, ONNX vs PyTorch",
    )
    encoder_prefix: str | None = Field(
        None, description="key prefix of the encoder weights (default: found)"
    )
    token_head: Annotated[str | None, Flag(metavar="KEY")] = Field(
        None,
        description="key prefix of the token head's linear layer (default: the linear layer "
        "with one output per tag)",
    )
    token_head_type: Literal["crf", "softmax"] | None = Field(
        None, description="default: crf if the checkpoint holds CRF scores, else softmax"
    )
    crf_key: Annotated[str | None, Flag(metavar="KEY")] = Field(
        None, description="key prefix of the CRF scores (default: found)"
    )
    sequence_head: Annotated[tuple[str, ...], Flag(metavar="KEY")] = Field(
        (),
        description="key prefix of a sequence head's linear layer, repeatable (default: every "
        "other linear layer); the head's name is the key's first part without a "
        "_classifier/_head suffix (intent_classifier -> intent)",
    )
    head_labels: Annotated[tuple[str, ...], Flag(metavar="NAME=FILE")] = Field(
        (),
        description="a sequence head's labels, one per line, repeatable (default: config.json "
        "head_labels)",
    )
    head_type: Annotated[tuple[str, ...], Flag(metavar="NAME=KIND")] = Field(
        (), description="single-label (softmax, the default) or multi-label (sigmoid), repeatable"
    )
    pooling: Annotated[tuple[str, ...], Flag(metavar="[NAME=]MODE")] = Field(
        (),
        description="how sequence heads read the encoder, as trained: cls (default), mean (over "
        "the attention mask) or pooler (the encoder's pooler); NAME= for one head",
    )
    mask_buffer: Annotated[str | None, Flag(metavar="KEY")] = Field(
        None,
        description="the token head's fixed logit mask in the checkpoint (default: a 1-D *mask* "
        "buffer with one value per tag; additive 0/-1e9 or boolean)",
    )
    mask_labels: Annotated[tuple[str, ...], Flag(metavar="TAG[,TAG]")] = Field(
        (), description="tags never to emit (with or instead of the buffer), repeatable"
    )
    intent_head: str | None = Field(
        None,
        description="the sequence head /v1/parse reports as the intent (default: 'intent', else "
        "the first single-label head)",
    )
    constrain_transitions: Annotated[bool, Flag("--no-bio-constraints")] = Field(
        True, description="decode without forbidding the tag scheme's invalid moves"
    )
    subtokens: Annotated[Literal["first", "all"], Flag(show_default=False)] = Field(
        "first",
        description="how training placed labels (recorded; tags are read at first sub-tokens)",
    )

    @field_validator("head_labels")
    @classmethod
    def _label_files(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            _pair(value, "--head-labels")
        return values

    @field_validator("head_type")
    @classmethod
    def _kinds(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if _pair(value, "--head-type")[1] not in KINDS:
                raise ValueError(f"--head-type {value}: expected single-label or multi-label")
        return values

    @field_validator("pooling")
    @classmethod
    def _poolings(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value.rpartition("=")[2] not in POOLINGS:
                raise ValueError(f"--pooling {value!r}: the mode must be one of {list(POOLINGS)}")
        return values

    def head_options(self) -> HeadOptions:
        """The head options, typed (label files read)."""
        labels = {}
        for value in self.head_labels:
            name, path = _pair(value, "--head-labels")
            labels[name] = read_labels_file(Path(path))
        kinds: dict[str, ClassifierHead] = {}
        for value in self.head_type:
            name, kind = _pair(value, "--head-type")
            kinds[name] = cast(ClassifierHead, KINDS[kind])
        pooling: Pooling = "cls"
        per_head: dict[str, Pooling] = {}
        for value in self.pooling:
            name, sep, mode = value.rpartition("=")
            if sep:
                per_head[name] = cast(Pooling, mode)
            else:
                pooling = cast(Pooling, mode)
        masked = tuple(t.strip() for v in self.mask_labels for t in v.split(",") if t.strip())
        return HeadOptions(
            encoder_prefix=self.encoder_prefix,
            token_head=self.token_head,
            token_kind=self.token_head_type,
            crf_prefix=self.crf_key,
            sequence_heads=self.sequence_head,
            head_labels=labels,
            head_kinds=kinds,
            pooling=pooling,
            head_pooling=per_head,
            mask_buffer=self.mask_buffer,
            mask_labels=masked,
            intent_head=self.intent_head,
        )


def export_joint_graph(model: JointModel, path: Path) -> None:
    """Trace every head's output and the packed one, dynamic batch and sequence axes."""
    names = model.input_names
    dummy = dummy_inputs(names, int(model.encoder.config.vocab_size))
    outputs = model.outputs()
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[outputs[0]] = {0: "batch", 1: "sequence"}
    axes.update({o: {0: "batch"} for o in outputs[1:-1]})
    axes[PACKED_OUTPUT] = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.module.eval(),
            tuple(dummy[n] for n in names),
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


class JointFamily(ExportFamily[JointModel, JointOptions]):
    command = "joint"
    summary = "export a joint model (one encoder, N sequence heads, one token head) to one graph"
    options = JointOptions
    manifest_type = JointManifest
    output = PACKED_OUTPUT
    extra_versions = ("pytorch-crf",)
    calibrates = True
    calibration_help = (
        "each labelled sequence head: single-label the abstain threshold (--target-precision), "
        'multi-label the cross-validated per-class thresholds; lines {"text": ..., "labels": '
        '[...]} label the intent head, "heads": {"NAME": [...]} any head (a head is '
        "calibrated when every line labels it)."
    )

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        """Every labelled sequence head, as ``/v1/classify`` bundles are calibrated."""
        from families.classify.validation import CalibrationOptions
        from families.joint.calibrate import run_joint_calibration

        return run_joint_calibration(
            CalibrationOptions(
                bundle=options.bundle,
                data=options.data,
                settings=settings,
                report=options.report,
                plots=not options.no_plots,
                target_precision=options.target_precision,
                automation=None,
            )
        )

    def build(self, raw: RawCheckpoint, options: JointOptions) -> JointModel:
        model = build_joint(raw, options.head_options())
        heads = ", ".join(f"{h.name} ({h.kind}, {h.pooling}, {len(h.labels)})" for h in model.heads)
        print(
            f"  joint heads: token {model.token_name} ({model.token_kind}, masked "
            f"{model.masked_labels or 'none'}); sequence {heads}; {'; '.join(model.notes)}",
            flush=True,
        )
        return model

    def position_limit(self, model: JointModel) -> int:
        return position_limit(model.encoder)

    def graph_spec(self, model: JointModel) -> GraphSpec:
        return GraphSpec.of(model.encoder.config)

    def export_graph(self, model: JointModel, path: Path) -> list[str]:
        export_joint_graph(model, path)
        return model.input_names

    def ner_spec(self, model: JointModel, options: JointOptions) -> NerSpec:
        crf = model.crf
        return NerSpec(
            tag_scheme=model.scheme,
            constrain_transitions=options.constrain_transitions,
            head=model.token_kind,
            crf=None
            if crf is None
            else CrfScores(
                start=crf.start_transitions.tolist(),
                end=crf.end_transitions.tolist(),
                transitions=crf.transitions.tolist(),
            ),
            subtokens=options.subtokens,
        )

    def decoder(self, model: JointModel, ctx: GateContext[JointOptions]) -> WordDecoder:
        return WordDecoder.from_spec(self.ner_spec(model, ctx.options), model.labels)

    def parity(
        self, model: JointModel, session: InferenceSession, ctx: GateContext[JointOptions]
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
            f"max abs diff over {1 + len(model.heads)} heads {report.max_abs_diff:.2e}, tag "
            f"agreement {report.tag_agreement:.0%} over {report.cases} sequences"
        )
        return report

    def agreement(
        self,
        model: JointModel,
        fp32: InferenceSession,
        variant: InferenceSession,
        ctx: GateContext[JointOptions],
    ) -> Agreement:
        return joint_agreement(
            model,
            self.decoder(model, ctx),
            fp32,
            variant,
            ctx.tokenizer,
            [*SAMPLE_TEXTS, *ctx.validation],
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.pad_id,
        )

    def spec(self, model: JointModel, options: JointOptions) -> JointSpec:
        outputs = model.outputs()
        architecture = f"{type(model.encoder).__name__} + linear heads"
        heads = [
            SequenceHead(
                name=h.name,
                labels=h.labels,
                pooling=h.pooling,
                classify=ClassifySpec(
                    head=h.kind,
                    problem_type=PROBLEM_TYPES[h.kind],
                    thresholds=[0.5] * len(h.labels) if h.kind == "multi-label" else None,
                    global_threshold=0.5 if h.kind == "multi-label" else None,
                    aggregation="max" if h.kind == "multi-label" else "mean",
                    architecture=architecture,
                ),
                output=outputs[1 + i],
            )
            for i, h in enumerate(model.heads)
        ]
        token = TokenHead(
            name=model.token_name,
            ner=self.ner_spec(model, options),
            masked_labels=model.masked_labels,
            output=outputs[0],
        )
        return JointSpec(token=token, sequence=heads, intent_head=model.intent_head)

    def sections(self, model: JointModel, ctx: GateContext[JointOptions]) -> dict[str, BaseModel]:
        return {"joint": self.spec(model, ctx.options)}


FAMILY = JointFamily()
