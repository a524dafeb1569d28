"""What the user asked for on the command line, validated before any slow step runs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from export.errors import ExportError

# int8: dynamic activation scales (per call, so per batch); int8-static: calibrated ranges.
Quantization = Literal["int8", "int8-static"]
CalibrationMethod = Literal["minmax", "percentile", "entropy"]
# Best measured on the default NER model (README, "INT8"): minmax lets rare outliers stretch the
# scales, 99.9 clips too much.
DEFAULT_CALIBRATION: CalibrationMethod = "percentile"
DEFAULT_PERCENTILE = 99.99
Int8Format = Literal["u8s8-reduced", "u8u8", "u8s8"]
DEFAULT_MIN_AGREEMENT = 0.99
# Exact on every CPU (no VNNI needed) and as fast as u8s8 where it runs: README, "INT8 formats".
DEFAULT_INT8_FORMAT: Int8Format = "u8s8-reduced"


@dataclass(frozen=True)
class VariantRequest:
    optimize: bool = False
    quantize: Quantization | None = None
    # Per-channel weight scales: on the default NER model per-tensor scales cost 1.8 F1 points.
    per_channel: bool = True
    int8_format: Int8Format = DEFAULT_INT8_FORMAT
    keep_fp32: tuple[str, ...] = ()  # regexes over node names left unquantized
    # When the whole graph fails the gate, keep its most sensitive products fp32 and retry.
    keep_sensitive: bool = True
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    validation: Path | None = None
    calibration: CalibrationMethod = DEFAULT_CALIBRATION
    percentile: float = DEFAULT_PERCENTILE
    # When the gate refuses INT8, ship the fp32 graph and record why (default bundles).
    fallback_fp32: bool = False

    @property
    def plain(self) -> bool:
        """No variant: the bundle is the exported fp32 graph, as before variants existed."""
        return not self.optimize and self.quantize is None

    def cli_args(self) -> list[str]:
        """The ``python -m export`` options that ask for this variant."""
        args = ["--optimize"] if self.optimize else []
        if self.quantize is not None:
            args += ["--quantize", self.quantize, "--min-agreement", repr(self.min_agreement)]
            args += [] if self.per_channel else ["--per-tensor"]
            args += [a for pattern in self.keep_fp32 for a in ("--keep-fp32", pattern)]
            if self.quantize == "int8-static":
                args += ["--calibration", self.calibration]
                args += ["--calibration-percentile", repr(self.percentile)]
            args += ["--fallback-fp32"] if self.fallback_fp32 else []
        if self.validation is not None:
            args += ["--validation", str(self.validation)]
        return args

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
