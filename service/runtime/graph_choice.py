"""Which of a bundle's graphs to serve on this CPU.

A bundle may carry INT8 graphs in several formats (``onnx`` plus ``int8_graphs``): full 8-bit
``u8s8`` is the most accurate and as fast as the others, but exact only with a dot-product
instruction (VNNI, AMX, Arm dot product); ``u8s8-reduced`` (7-bit weights) and ``u8u8`` are exact
everywhere. The service tries them fastest first, skipping those the CPU cannot compute exactly;
the loader then falls back to the next when a graph's self-check fails. An fp32 primary graph
(INT8 refused by its gate) comes last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.manifest import ManifestBase, SelfCheck
from service.runtime.cpu_features import CpuInfo

# Fastest first on a CPU where all are exact: u8s8 and u8s8-reduced run the same kernels, u8s8 has
# the better accuracy (8-bit weights); u8u8 loses the VNNI kernel; fp32 (None) is the slowest.
FORMAT_PREFERENCE: dict[str | None, int] = {"u8s8": 0, "u8s8-reduced": 1, "u8u8": 2, None: 3}


@dataclass(frozen=True)
class GraphCandidate:
    """One graph of a bundle: its file, what it is, and the self-check sample that goes with it."""

    file: str
    sha256: str
    int8_format: str | None  # None: fp32
    quantization: str  # "none", "int8-static", "int8-dynamic"
    requires_cpu_features: list[str]
    selfcheck: SelfCheck | None
    kept_fp32_nodes: int = 0
    agreement: float | None = None

    @property
    def label(self) -> str:
        return self.int8_format or "fp32"


@dataclass
class GraphChoice:
    """The graph served and why (``/v1/models`` ``graph``, the load log)."""

    chosen: GraphCandidate
    reason: str
    passed_over: list[str] = field(default_factory=list)  # "u8s8: self-check failed ..."
    available: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        return {
            "file": self.chosen.file,
            "sha256": self.chosen.sha256,
            "int8_format": self.chosen.int8_format,
            "quantization": self.chosen.quantization,
            "kept_fp32_nodes": self.chosen.kept_fp32_nodes,
            "agreement": self.chosen.agreement,
            "available": self.available,
            "reason": self.reason,
            "passed_over": self.passed_over,
        }

    def summary(self, name: str) -> str:
        over = f"; passed over: {'; '.join(self.passed_over)}" if self.passed_over else ""
        return f"{name}: serving {self.chosen.file} ({self.chosen.label}): {self.reason}{over}"


def candidates(manifest: ManifestBase) -> list[GraphCandidate]:
    """Every graph the bundle carries, the primary (``onnx``) first, as the manifest says."""
    v = manifest.variant
    primary = GraphCandidate(
        file=manifest.onnx.file,
        sha256=manifest.onnx.sha256,
        int8_format=(v.int8_format or "u8s8") if v and v.quantization else None,
        quantization=manifest.quantization(),
        requires_cpu_features=v.required_cpu_features() if v else [],
        selfcheck=manifest.selfcheck,
        kept_fp32_nodes=v.kept_fp32_nodes if v else 0,
        agreement=v.agreement if v else None,
    )
    return [
        primary,
        *(
            GraphCandidate(
                file=g.file,
                sha256=g.sha256,
                int8_format=g.int8_format,
                quantization=g.quantization,
                requires_cpu_features=list(g.requires_cpu_features),
                selfcheck=g.selfcheck,
                kept_fp32_nodes=g.kept_fp32_nodes,
                agreement=g.agreement,
            )
            for g in manifest.int8_graphs
        ),
    ]


def order_graphs(
    manifest: ManifestBase, cpu: CpuInfo, forced: str = "auto"
) -> tuple[list[GraphCandidate], list[str], str]:
    """(graphs to try in order, those passed over for the CPU and why, the reason for the first).

    ``forced`` (``INFER_INT8_FORMAT``): that format first when the bundle has it; the CPU rule
    still applies (a graph this CPU cannot compute exactly is never served).
    """
    every = candidates(manifest)
    usable = [g for g in every if cpu.has_any(g.requires_cpu_features)]
    passed_over = [
        f"{g.label}: exact only with {' or '.join(g.requires_cpu_features)}, not on this CPU"
        for g in every
        if g not in usable
    ]
    usable.sort(key=lambda g: FORMAT_PREFERENCE.get(g.int8_format, 3))
    if forced != "auto" and any(g.int8_format == forced for g in usable):
        usable.sort(key=lambda g: g.int8_format != forced)
        return usable, passed_over, f"INFER_INT8_FORMAT={forced}"
    if len(every) == 1:
        return usable, passed_over, "the bundle's only graph"
    first = usable[0] if usable else None
    if first is None:
        return usable, passed_over, ""
    if first.requires_cpu_features:
        had = [f for f in first.requires_cpu_features if f in cpu.flags]
        why = f"the fastest graph valid here: this CPU has {' '.join(had)}"
    else:
        why = "the fastest graph valid on this CPU"
        dot = [g for g in every if g.requires_cpu_features]
        if dot and all(g not in usable for g in dot):
            why += f" (no {' / '.join(dot[0].requires_cpu_features)} for {dot[0].label})"
    note = ""
    if forced != "auto":
        carried = any(g.int8_format == forced for g in every)
        note = f"; INFER_INT8_FORMAT={forced} " + (
            "is not exact on this CPU" if carried else "is not in the bundle"
        )
    return usable, passed_over, why + note


def served_file(manifest: ManifestBase, cpu: CpuInfo, forced: str = "auto") -> str:
    """The graph file the service would try first here (benchmarks time the same graph as the
    service they compare with; the self-check fallback aside)."""
    order, _, _ = order_graphs(manifest, cpu, forced)
    return order[0].file if order else manifest.onnx.file
