"""What CPU this process runs on, as far as INT8 numerics are concerned.

ONNX Runtime's u8 x s8 INT8 kernels use VPMADDUBSW on x86 CPUs without a dot-product instruction
(VNNI): it saturates 16-bit pair sums, so the same INT8 graph gives different, worse answers there
than on a VNNI or AMX CPU. Bundles record the CPU they were validated on and the features their
INT8 format needs; the service compares them with :func:`current_cpu` before serving.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

from pydantic import BaseModel, ConfigDict

_CPUINFO = Path("/proc/cpuinfo")

# Flags that matter for INT8 GEMM numerics and speed, as /proc/cpuinfo spells them.
ISA_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
    "asimddp",  # Arm dot product (SDOT/UDOT)
)
# Any one of these gives ORT an exact u8 x s8 dot product (no 16-bit saturation).
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


class CpuInfo(BaseModel):
    """A CPU model name and the ISA flags of :data:`ISA_FLAGS` it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    flags: list[str]

    def has_any(self, features: list[str]) -> bool:
        return not features or any(f in self.flags for f in features)

    def describe(self) -> str:
        return f"{self.model} [{' '.join(self.flags) or 'no AVX2/AVX-512/VNNI/AMX'}]"


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name and relevant flags from the text of ``/proc/cpuinfo`` (first processor)."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return CpuInfo(model=model or "unknown", flags=[f for f in ISA_FLAGS if f in flags])


@functools.cache
def current_cpu() -> CpuInfo:
    """This host's CPU (Linux reads /proc/cpuinfo; elsewhere the model is the platform's)."""
    try:
        return parse_cpuinfo(_CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CpuInfo(model=platform.processor() or platform.machine() or "unknown", flags=[])
