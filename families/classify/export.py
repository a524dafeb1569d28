"""``python -m export classify``: any ``AutoModelForSequenceClassification`` → one bundle.

Multi-label (sigmoid, per-class thresholds, windows combined by max or mean) or single-label
(softmax, windows combined by the mean of their probabilities, optional abstain threshold), with
the problem type from ``config.json`` unless ``--problem-type`` says otherwise. Longformer is traced
through its blocked export form (global attention on CLS); other encoders through HF's module.
``python -m export postures`` is the Longformer, multi-label, posture-bundle specialisation
(:mod:`families.postures.export`), which shares :class:`ClassifierFamily`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from export.calibration.command import CalibrateOptions, automation_settings
from export.calibration.options import Settings
from export.checkpoint import RawCheckpoint
from export.cli_options import Flag
from export.errors import ExportError
from export.family import ExportFamily, GateContext
from export.onnx_graph import OPSET, export_scores
from export.options import ExportOptions
from export.variants.gate import Agreement, classifier_agreement
from export.variants.ship import GraphSpec
from families.classify.model import Classifier, build_classifier
from families.classify.parity import check_parity, parity_lengths
from families.classify.spec import PROBLEM_TYPES, ClassifierHead, ClassifyManifest, ClassifySpec
from families.postures.blocked_longformer import export_onnx
from service.bundle import ParityReport
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


def _comma_ints(value: str) -> tuple[int, ...]:
    return tuple(int(x) for x in value.split(","))


def _comma_joined(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


class ClassifierOptions(ExportOptions):
    """What both classifier commands (``classify`` and ``postures``) take."""

    max_length_cap: ClassVar[int] = 4096
    stride_divisor: ClassVar[int] = 8
    aggregation_scope: ClassVar[str] = ""  # who --aggregation applies to, for its help

    atol: float = Field(1e-3, description="max abs probability difference ONNX vs PyTorch")
    aggregation: Literal["max", "mean"] | None = Field(
        None,
        description="${aggregation_scope}how window probabilities of a long text combine "
        "(default: max; single-label heads always use the mean)",
    )
    parity_lengths: Annotated[
        tuple[int, ...] | None, Flag(parse=_comma_ints, render=_comma_joined)
    ] = Field(
        None,
        description="comma-separated lengths for the parity gate "
        "(default: 1,100,511,512,513,1500,4095 and the max, up to the max)",
    )


class _ClassifyOwnOptions(ExportOptions):
    """The options only ``classify`` takes (a base of its own so that ``--help`` lists them
    before the classifier options it shares with ``postures``, as it always has)."""

    problem_type: Literal["multi", "single"] | None = Field(
        None,
        description="multi: sigmoid per class + thresholds; single: softmax + argmax (default: "
        "config.json's problem_type; unset means single)",
    )
    encoder_prefix: str | None = Field(
        None,
        description="key prefix of the encoder weights in a .pt checkpoint (default: found among "
        "the architecture's own and bert/encoder/model/transformer)",
    )
    abstain_threshold: float | None = Field(
        None,
        description="single-label: answer no class below this top probability (better: "
        "`python -m export calibrate` on a labelled validation split)",
    )


class ClassifyOptions(ClassifierOptions, _ClassifyOwnOptions):
    """``python -m export classify`` / ``export_bundle("classify", ClassifyOptions(...))``."""

    agreement_unit: ClassVar[str] = (
        "(document, label) decisions at 0.5 (multi-label) or top classes (single)"
    )
    aggregation_scope: ClassVar[str] = "multi-label: "


Copts = TypeVar("Copts", bound=ClassifierOptions)


class ClassifierFamily(ExportFamily[Classifier, Copts]):
    """The export steps ``classify`` and ``postures`` share (windows of a classifier's logits)."""

    output = "logits"
    calibrates = True

    def calibrate(self, options: CalibrateOptions, settings: Settings) -> dict[str, object]:
        """Multi-label: cross-validated thresholds; single-label: the abstain cut."""
        from families.classify.calibrate import run_calibration
        from families.classify.validation import CalibrationOptions

        return run_calibration(
            CalibrationOptions(
                bundle=options.bundle,
                data=options.data,
                settings=settings,
                report=options.report,
                plots=not options.no_plots,
                target_precision=options.target_precision,
                automation=automation_settings(options),
            )
        )

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
        self, model: Classifier, session: InferenceSession, ctx: GateContext[Copts]
    ) -> ParityReport:
        lengths = parity_lengths(ctx.max_length, ctx.options.parity_lengths)
        ctx.progress.note(f"parity lengths {lengths}")
        return check_parity(model, session, ctx.tokenizer, lengths, ctx.atol, ctx.progress)

    def aggregation(self, model: Classifier, options: Copts) -> str:
        return "mean" if model.head == "single-label" else options.aggregation or "max"

    def agreement(
        self,
        model: Classifier,
        fp32: InferenceSession,
        variant: InferenceSession,
        ctx: GateContext[Copts],
    ) -> Agreement:
        lengths = parity_lengths(ctx.max_length, ctx.options.parity_lengths)
        vocab = int(model.model.config.vocab_size)
        return classifier_agreement(
            fp32,
            variant,
            ctx.tokenizer,
            _gate_documents(ctx.tokenizer, ctx.validation, lengths, vocab),
            model.head,
            ctx.max_length - ctx.tokenizer.num_special_tokens,
            ctx.stride,
            self.aggregation(model, ctx.options),
            ctx.pad_id,
        )


class ClassifyFamily(ClassifierFamily[ClassifyOptions]):
    command = "classify"
    summary = "export a sequence classifier (any encoder, multi- or single-label) to a bundle"
    options = ClassifyOptions
    manifest_type = ClassifyManifest

    def build(self, raw: RawCheckpoint, options: ClassifyOptions) -> Classifier:
        head = _HEAD_FLAGS[options.problem_type] if options.problem_type else None
        classifier = build_classifier(raw, head, options.encoder_prefix)
        if classifier.head == "single-label" and options.aggregation == "max":
            raise ExportError(
                "a single-label head combines windows by the mean of their probabilities; "
                "--aggregation max applies to multi-label heads"
            )
        abstain = options.abstain_threshold
        if abstain is not None and (classifier.head != "single-label" or not 0 <= abstain <= 1):
            raise ExportError("--abstain-threshold needs a single-label head and a value in [0, 1]")
        return classifier

    def spec(self, model: Classifier, options: ClassifyOptions) -> ClassifySpec:
        multi = model.head == "multi-label"
        return ClassifySpec(
            head=model.head,
            problem_type=PROBLEM_TYPES[model.head],
            thresholds=[0.5] * len(model.labels) if multi else None,
            global_threshold=0.5 if multi else None,
            abstain_threshold=options.abstain_threshold,
            aggregation=self.aggregation(model, options),
            architecture=model.architecture,
            global_attention=model.longformer,
        )

    def sections(
        self, model: Classifier, ctx: GateContext[ClassifyOptions]
    ) -> dict[str, BaseModel]:
        return {"classify": self.spec(model, ctx.options)}

    def done_note(self) -> str:
        return (
            " (multi-label thresholds are 0.5 and single-label heads never abstain until "
            "`python -m export calibrate`)"
        )


FAMILY = ClassifyFamily()
