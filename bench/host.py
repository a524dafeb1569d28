"""Where a benchmark ran: CPU model, the ISA features that change its ratios, cores, and the
matmul peaks measured on this host (not a datasheet's).

Speed ratios between ONNX Runtime, PyTorch and INT8 depend on the ISA far more than on the clock:
on an AVX2-only CPU fp32 ONNX Runtime and PyTorch share one GEMM ceiling, VNNI/AMX make INT8
several times faster than fp32. Every benchmark prints :func:`describe` above its table and stores
:func:`host` in its JSON, so a figure is never read without the CPU it came from.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.runtime.cpu_features import CpuInfo, current_cpu
from service.runtime.cpus import available_cpus

# What each feature changes, as the README's "Benchmarks" explains; the flag spellings of cpuinfo.
FEATURES = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AMX": ("amx_int8",),
}


def features(cpu: CpuInfo) -> dict[str, bool]:
    return {name: any(f in cpu.flags for f in flags) for name, flags in FEATURES.items()}


def host_class(cpu: CpuInfo) -> str:
    """The class the README keeps one table for: ``AMX``, ``AVX-512 + VNNI``, ``AVX-512``,
    ``AVX2 + VNNI``, ``AVX2 only`` or ``no AVX2``."""
    has = features(cpu)
    if has["AMX"]:
        return "AMX"
    if has["AVX-512"]:
        return "AVX-512 + VNNI" if has["VNNI"] else "AVX-512"
    if has["AVX2"]:
        return "AVX2 + VNNI" if has["VNNI"] else "AVX2 only"
    return "no AVX2"


def fast_isa(info: dict[str, Any]) -> bool:
    """AVX-512, VNNI or AMX: the issue's higher speed-up targets apply."""
    has = info["features"]
    return bool(has["AVX-512"] or has["VNNI"] or has["AMX"])


def measure_peaks(n: int, repeats: int, threads: int) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` rates of an n³ product: ORT fp32 MatMul, ORT INT8 MatMulInteger
    (u8 x s8), numpy fp32 ``@`` (its BLAS). 2·n³ operations each."""
    from bench.flops import gemm_sessions

    def best(run: Any) -> float:
        run()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return min(times)

    results = {}
    for name, (session, feed) in gemm_sessions(n, threads).items():
        seconds = best(lambda s=session, f=feed: s.run(None, f))
        results[name] = {"n": n, "best_s": seconds, "ops_per_s": 2 * n**3 / seconds}
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    seconds = best(lambda: a @ b)
    results["numpy_fp32"] = {"n": n, "best_s": seconds, "ops_per_s": 2 * n**3 / seconds}
    return results


def host(peaks: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """This host as the JSON reports store it."""
    cpu = current_cpu()
    return {
        "cpu": cpu.model,
        "flags": cpu.flags,
        "features": features(cpu),
        "class": host_class(cpu),
        "logical_cpus": os.cpu_count(),
        "cpus_used": available_cpus(),
        "peaks": peaks or {},
    }


def describe(info: dict[str, Any]) -> str:
    """One line: CPU model, host class and features, CPUs used, measured peaks."""
    has = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["features"].items())
    line = (
        f"CPU: {info['cpu']} ({info['class']}: {has}), {info['cpus_used']} of "
        f"{info['logical_cpus']} logical CPUs used"
    )
    peaks = info["peaks"]
    if peaks:
        line += (
            f"; measured peaks: fp32 {peaks['fp32']['ops_per_s'] / 1e9:.0f} GFLOP/s (ORT MatMul), "
            f"{peaks['numpy_fp32']['ops_per_s'] / 1e9:.0f} GFLOP/s (numpy), INT8 "
            f"{peaks['int8']['ops_per_s'] / 1e9:.0f} GOP/s (ORT MatMulInteger), "
            f"{peaks['fp32']['n']}³"
        )
    return line


def served_graph(bundle: Path) -> str:
    """The graph file of ``bundle`` the service would serve on this CPU (``INFER_INT8_FORMAT``
    honoured): a bundle may carry several INT8 formats, and a raw-session baseline must time the
    one the service runs."""
    from service.bundle import read_onnx_manifest
    from service.runtime.graph_choice import served_file

    return served_file(
        read_onnx_manifest(bundle), current_cpu(), os.environ.get("INFER_INT8_FORMAT", "auto")
    )
