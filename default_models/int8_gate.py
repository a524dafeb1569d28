"""The held-out half of a default bundle's INT8 gate, shared by the three default builds.

``python -m export ... --quantize int8-static --fallback-fp32`` already applies the first half
(agreement with the fp32 graph on the validation texts, keeping sensitive products fp32 until it
passes, or shipping fp32 with the reason). The default builds then ask the question a user of
the model cares about: is the task metric on the *held-out test split* within ``MAX_DROP`` of the
fp32 bundle's? INT8 ships only if so; otherwise the fp32 bundle ships and its bundle.json says
why (``variant.quantization_refused``, shown by ``/v1/models``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.bundle import (
    VariantInfo,
    read_onnx_manifest,
    schema_version_for,
    verify_bundle,
    write_manifest,
)

# At most half a point of the held-out metric (issue 14's gate for the default models).
MAX_DROP = 0.005
FORMAT_ENV = "INFER_INT8_FORMAT"
# Beside the portable u8s8-reduced graph, the default builds also ship full 8-bit u8s8 for
# VNNI/AMX hosts where it passes the same gates (docs/int8.md, "Several INT8 graphs").
ALSO_INT8_FORMATS = ("u8s8",)


@contextmanager
def served_format(fmt: str) -> Iterator[None]:
    """Load bundles with their ``fmt`` INT8 graph first (``INFER_INT8_FORMAT``), to score it."""
    before = os.environ.get(FORMAT_ENV)
    os.environ[FORMAT_ENV] = fmt
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FORMAT_ENV, None)
        else:
            os.environ[FORMAT_ENV] = before


def _gate_other_graphs(
    int8: Path, fp32_score: float, score: Callable[[Path], float], metric: str
) -> dict[str, object]:
    """Score each extra INT8 graph (``int8_graphs``) on the held-out split; drop those more than
    ``MAX_DROP`` below fp32 (file deleted, reason in ``variant.int8_formats_refused``)."""
    manifest = read_onnx_manifest(int8)
    kept, figures = [], dict[str, object]()
    refused = dict(manifest.variant.int8_formats_refused) if manifest.variant else {}
    for graph in manifest.int8_graphs:
        with served_format(graph.int8_format):
            graph_score = score(int8)
        figures[graph.int8_format] = {
            "agreement": graph.agreement,
            "kept_fp32_nodes": graph.kept_fp32_nodes,
            "test_int8": round(graph_score, 4),
        }
        if graph_score >= fp32_score - MAX_DROP:
            kept.append(graph)
            continue
        refused[graph.int8_format] = (
            f"held-out gate failed: test {metric} {graph_score:.4f} vs fp32 {fp32_score:.4f}"
        )
        (int8 / graph.file).unlink()
    if len(kept) != len(manifest.int8_graphs) and manifest.variant is not None:
        variant = manifest.variant.model_copy(update={"int8_formats_refused": refused})
        manifest = manifest.model_copy(update={"int8_graphs": kept, "variant": variant})
        manifest = manifest.model_copy(update={"schema_version": schema_version_for(manifest)})
        write_manifest(manifest, int8)
        verify_bundle(int8)
    return figures


def ship_int8_if_gated(
    fp32: Path, int8: Path, score: Callable[[Path], float], metric: str
) -> tuple[Path, dict[str, object]]:
    """The INT8 bundle if ``score`` (a held-out ``metric``, higher is better) is within
    ``MAX_DROP`` of the fp32 bundle's; else the fp32 bundle with the reason recorded.

    ``int8`` is the export's output: when its own agreement gate refused, it already holds the
    fp32 graph and ``variant.quantization_refused``. Each extra INT8 graph it carries
    (``--int8-also``) is scored on its own and dropped if it fails; an fp32 graph with extra INT8
    graphs that pass ships as it is (the service serves those where the CPU can).
    """
    variant = read_onnx_manifest(int8).variant
    has_others = bool(read_onnx_manifest(int8).int8_graphs)
    if (variant is None or variant.quantization is None) and not has_others:
        refused = variant.quantization_refused if variant else "no variant recorded"
        return int8, {"shipped": "fp32", "refused": refused}
    fp32_score = score(fp32)
    others = _gate_other_graphs(int8, fp32_score, score, metric)
    if variant is None or variant.quantization is None:
        refused = variant.quantization_refused if variant else "no variant recorded"
        shipped = "fp32 + " + ", ".join(others) if read_onnx_manifest(int8).int8_graphs else "fp32"
        return int8, {"shipped": shipped, "refused": refused, "formats": others}
    with served_format(variant.int8_format or "auto"):
        int8_score = score(int8)
    figures: dict[str, object] = {
        "agreement": variant.agreement,
        "kept_fp32_nodes": variant.kept_fp32_nodes,
        "metric": metric,
        "test_fp32": round(fp32_score, 4),
        "test_int8": round(int8_score, 4),
        "int8_format": variant.int8_format,
        "formats": others,
    }
    if int8_score >= fp32_score - MAX_DROP:
        return int8, {"shipped": variant.quantization, **figures}
    reason = (
        f"held-out gate failed: {variant.quantization} test {metric} {int8_score:.4f} vs fp32 "
        f"{fp32_score:.4f} (more than {100 * MAX_DROP:g} point lower); agreement with fp32 "
        f"{variant.agreement} passed"
    )
    record_refusal(fp32, reason)
    return fp32, {"shipped": "fp32", "refused": reason, **figures}


def record_refusal(bundle: Path, reason: str) -> None:
    """Write ``reason`` as the fp32 bundle's ``variant.quantization_refused`` (and re-verify)."""
    manifest = read_onnx_manifest(bundle)
    record = VariantInfo(quantization_refused=reason, fp32_sha256=manifest.onnx.sha256)
    manifest = manifest.model_copy(update={"variant": record})
    manifest = manifest.model_copy(update={"schema_version": schema_version_for(manifest)})
    write_manifest(manifest, bundle)
    verify_bundle(bundle)
