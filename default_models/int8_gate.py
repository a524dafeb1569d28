"""The held-out half of a default bundle's INT8 gate, shared by the three default builds.

``python -m export ... --quantize int8-static --fallback-fp32`` already applies the first half
(agreement with the fp32 graph on the validation texts, keeping sensitive products fp32 until it
passes, or shipping fp32 with the reason). The default builds then ask the question a user of
the model cares about: is the task metric on the *held-out test split* within ``MAX_DROP`` of the
fp32 bundle's? INT8 ships only if so; otherwise the fp32 bundle ships and its bundle.json says
why (``variant.quantization_refused``, shown by ``/v1/models``).
"""

from __future__ import annotations

from collections.abc import Callable
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


def ship_int8_if_gated(
    fp32: Path, int8: Path, score: Callable[[Path], float], metric: str
) -> tuple[Path, dict[str, object]]:
    """The INT8 bundle if ``score`` (a held-out ``metric``, higher is better) is within
    ``MAX_DROP`` of the fp32 bundle's; else the fp32 bundle with the reason recorded.

    ``int8`` is the export's output: when its own agreement gate refused, it already holds the
    fp32 graph and ``variant.quantization_refused``, and ships as it is.
    """
    variant = read_onnx_manifest(int8).variant
    if variant is None or variant.quantization is None:
        refused = variant.quantization_refused if variant else "no variant recorded"
        return int8, {"shipped": "fp32", "refused": refused}
    fp32_score, int8_score = score(fp32), score(int8)
    figures: dict[str, object] = {
        "agreement": variant.agreement,
        "kept_fp32_nodes": variant.kept_fp32_nodes,
        "metric": metric,
        "test_fp32": round(fp32_score, 4),
        "test_int8": round(int8_score, 4),
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
