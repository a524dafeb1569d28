"""The INT8 formats ``--int8-format`` offers: how the quantizer is asked, where each is exact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.runtime.cpu_features import INT8_DOT_PRODUCT

Int8Format = Literal["u8s8-reduced", "u8u8", "u8s8"]
# Exact on every CPU (no VNNI needed) and as fast as u8s8 where it runs: README, "INT8 formats".
DEFAULT_INT8_FORMAT: Int8Format = "u8s8-reduced"


@dataclass(frozen=True)
class Int8Scheme:
    """How one INT8 format is asked of the quantizer, and which CPUs compute it exactly."""

    weight_type: str  # onnxruntime.quantization.QuantType member name
    reduce_range: bool
    # Any one of these CPU features is needed for exact integer sums (empty: every x86-64/Arm).
    requires_any: tuple[str, ...]
    summary: str


# u8 x s8 with full-range weights is exact only where a dot-product instruction exists: without
# VNNI, ORT's VPMADDUBSW path saturates 16-bit pair sums (255 x 127 x 2 > 32767). 7-bit weights
# (reduce_range) keep the pair sums below 2^15, and u8 x u8 runs through 16-bit VPMADDWD: both are
# exact on every CPU, so the answers do not depend on where the bundle is served.
INT8_SCHEMES: dict[str, Int8Scheme] = {
    "u8s8-reduced": Int8Scheme(
        "QInt8", True, (), "u8 activations x 7-bit s8 weights: exact on every CPU"
    ),
    "u8u8": Int8Scheme("QUInt8", False, (), "u8 activations x u8 weights: exact on every CPU"),
    "u8s8": Int8Scheme(
        "QInt8",
        False,
        INT8_DOT_PRODUCT,
        "u8 activations x 8-bit s8 weights: exact only with VNNI/AMX (saturates on AVX2)",
    ),
}
