"""The graph variant asked for (``--optimize``, ``--quantize`` ...), validated before any slow step.

Each field is one ``python -m export`` option (:mod:`export.cli_options` builds the parser from
it); the Python API (:func:`export.api.export_bundle`) takes the same model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from export.cli_options import Flag
from export.errors import ExportError
from export.variants.schemes import DEFAULT_INT8_FORMAT, INT8_SCHEMES, Int8Format

# int8: dynamic activation scales (per call, so per batch); int8-static: calibrated ranges.
Quantization = Literal["int8", "int8-static"]
CalibrationMethod = Literal["minmax", "percentile", "entropy"]
# Best measured on the default NER model (README, "INT8"): minmax lets rare outliers stretch the
# scales, 99.9 clips too much.
DEFAULT_CALIBRATION: CalibrationMethod = "percentile"
DEFAULT_PERCENTILE = 99.99
DEFAULT_MIN_AGREEMENT = 0.99


class VariantRequest(BaseModel):
    """Graph variants: the fp32 parity gate still runs; INT8 must also pass the accuracy gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimize: bool = Field(
        False,
        description="apply onnxruntime's exact transformer fusions (checked by the fp32 parity "
        "gate)",
    )
    quantize: Quantization | None = Field(
        None,
        description="ship an INT8 graph if it passes the gate (format: --int8-format). int8: "
        "dynamic activation scales, computed per call, so a text's answer can depend on its "
        "batch-mates; int8-static: activation ranges calibrated at export on the --validation "
        "texts, so it cannot",
    )
    calibration: CalibrationMethod = Field(
        DEFAULT_CALIBRATION, description="int8-static: how activation ranges are cut"
    )
    percentile: Annotated[float, Flag("--calibration-percentile")] = Field(
        DEFAULT_PERCENTILE,
        description="int8-static with --calibration percentile: share of activation values "
        "inside the range, in percent",
    )
    # When the gate refuses INT8, ship the fp32 graph and record why (default bundles).
    fallback_fp32: bool = Field(
        False,
        description="when INT8 fails the accuracy gate, ship the fp32 graph and record the reason "
        "in bundle.json (variant.quantization_refused) instead of failing the export",
    )
    int8_format: Int8Format = Field(
        DEFAULT_INT8_FORMAT,
        description="; ".join(f"{name}: {s.summary}" for name, s in INT8_SCHEMES.items()),
    )
    # More INT8 graphs in the same bundle (another format each), gated and self-checked on their
    # own; the service serves the fastest valid on its CPU (docs/int8.md, "Several INT8 graphs").
    int8_also: Annotated[tuple[str, ...], Flag(metavar="FORMAT")] = Field(
        (),
        description="also ship an INT8 graph in this format (repeatable; e.g. u8s8 beside the "
        "default u8s8-reduced, for VNNI/AMX hosts), as model.int8-FORMAT.onnx, if it passes the "
        "same gate on its own; one this export's CPU cannot compute exactly, or that fails the "
        "gate, is left out with the reason (variant.int8_formats_refused)",
    )
    # Per-channel weight scales: on the default NER model per-tensor scales cost 1.8 F1 points.
    per_channel: Annotated[bool, Flag("--per-tensor")] = Field(
        True, description="one INT8 scale per weight tensor (default: one per output channel)"
    )
    keep_fp32: Annotated[tuple[str, ...], Flag(metavar="REGEX")] = Field(
        (),
        description="leave nodes whose name matches unquantized (repeatable), e.g. "
        r"'layer\.\d+/output/dense' for BERT's FFN output projections",
    )
    # When the whole graph fails the gate, keep its most sensitive products fp32 and retry.
    keep_sensitive: Annotated[bool, Flag("--no-keep-sensitive")] = Field(
        True,
        description="refuse at once when the fully quantized graph fails the gate (default: keep "
        "its most sensitive products fp32, 1, 2, 4, ... up to half of them, until it passes)",
    )
    min_agreement: float = Field(
        DEFAULT_MIN_AGREEMENT,
        description="accuracy gate: fraction of ${agreement_unit} that must match the fp32 graph",
    )
    validation: Path | None = Field(
        None,
        description='extra gate texts, JSON lines {"text": ...} (e.g. the dev split); '
        "int8-static also calibrates on them",
    )

    @property
    def extra_formats(self) -> list[Int8Format]:
        """The --int8-also formats other than --int8-format, once each, in the order given."""
        formats: list[Int8Format] = []
        for fmt in self.int8_also:
            if fmt != self.int8_format and fmt not in formats and fmt in INT8_SCHEMES:
                formats.append(fmt)  # type: ignore[arg-type]  # checked against INT8_SCHEMES
        return formats

    @property
    def plain(self) -> bool:
        """No variant: the bundle is the exported fp32 graph, as before variants existed."""
        return not self.optimize and self.quantize is None

    def check(self) -> None:
        """Fail fast on arguments that make no sense (before the checkpoint is even loaded)."""
        if not 0.0 < self.min_agreement <= 1.0:
            raise ExportError(
                f"--min-agreement {self.min_agreement:g} must be in (0, 1] "
                "(a fraction of words / label decisions that must match the fp32 graph)"
            )
        if self.quantize is None and (
            not self.per_channel or self.keep_fp32 or self.int8_format != DEFAULT_INT8_FORMAT
        ):
            raise ExportError(
                "--per-tensor, --keep-fp32 and --int8-format only apply with --quantize int8"
            )
        for fmt in self.int8_also:
            if fmt not in INT8_SCHEMES:
                raise ExportError(
                    f"--int8-also {fmt!r}: not an INT8 format (one of {', '.join(INT8_SCHEMES)})"
                )
        if self.int8_also and self.quantize is None:
            raise ExportError("--int8-also only applies with --quantize")
        static_options = (
            self.calibration != DEFAULT_CALIBRATION or self.percentile != DEFAULT_PERCENTILE
        )
        if self.quantize != "int8-static" and static_options:
            raise ExportError(
                "--calibration and --calibration-percentile only apply with --quantize int8-static"
            )
        if not 90.0 <= self.percentile <= 100.0:
            raise ExportError(
                f"--calibration-percentile {self.percentile:g} must be in [90, 100] (the share "
                "of activation values inside the calibrated range, in percent)"
            )
        if self.fallback_fp32 and self.quantize is None:
            raise ExportError("--fallback-fp32 only applies with --quantize")
        for pattern in self.keep_fp32:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ExportError(
                    f"--keep-fp32 {pattern!r}: not a regular expression ({exc})"
                ) from exc
        if self.validation is not None:
            if self.quantize is None:
                raise ExportError("--validation only applies with --quantize")
            if not self.validation.is_file():
                raise ExportError(f"--validation {self.validation}: no such file")


def read_validation_texts(path: Path | None) -> list[str]:
    """The ``text`` of every JSON line of ``path`` (other keys, e.g. gold spans, are ignored)."""
    if path is None:
        return []
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ExportError(f'{path}:{number}: expected an object with a "text" string')
        texts.append(record["text"])
    if not texts:
        raise ExportError(f"{path}: no texts")
    return texts
