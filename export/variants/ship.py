"""From the exported fp32 graph to the graph the bundle ships, with every gate on the way.

1. ``--optimize``: fuse, then the fp32 parity gate against PyTorch runs on the fused graph. If the
   fused graph fails it while the unfused one passes, the fusion is skipped with a message.
2. Without ``--optimize`` the parity gate runs on the exported graph, as before variants existed.
3. ``--quantize int8`` (dynamic) or ``int8-static`` (calibrated activation ranges): quantize the
   gated fp32 graph, then the accuracy gate compares the two; below ``--min-agreement`` the most
   sensitive products are kept fp32 until it passes, else the export stops and the staging
   directory is discarded (or, with ``--fallback-fp32``, the fp32 graph ships with the reason).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.errors import ParityError
from export.progress import Progress
from export.selfcheck import SampleSpec, build_selfcheck
from export.variants.gate import AccuracyGateError, Agreement
from export.variants.graphs import (
    Family,
    matching_nodes,
    optimize_graph,
    quantize_int8,
)
from export.variants.request import VariantRequest
from export.variants.schemes import INT8_SCHEMES
from export.variants.sensitivity import rank_sensitive_nodes
from export.variants.static import (
    Calibration,
    Ranges,
    collect_activations,
    compute_ranges,
    quantize_static_int8,
)
from service.bundle import (
    CalibrationInfo,
    Int8Graph,
    ParityReport,
    SelfCheck,
    VariantInfo,
    sha256_of,
)
from service.runtime.cpu_features import current_cpu


@dataclass(frozen=True)
class GraphSpec:
    """What the optimizer needs to know about the exported encoder."""

    family: Family
    num_heads: int
    hidden: int

    @classmethod
    def of(cls, config: Any) -> GraphSpec:
        """From an HF config: onnxruntime's optimizer knows Longformer and BERT by name; RoBERTa,
        XLM-R, DistilBERT and the rest use the BERT fusions."""
        family: Family = "longformer" if config.model_type == "longformer" else "bert"
        heads = getattr(config, "num_attention_heads", None) or config.n_heads
        hidden = getattr(config, "hidden_size", None) or config.dim
        return cls(family, int(heads), int(hidden))


SKIPPED = "skipped:"


def variant_steps(request: VariantRequest) -> int:
    """Progress steps the variant work adds to an export (the parity step is counted already)."""
    graphs = (1 + len(request.extra_formats)) if request.quantize is not None else 0
    return int(request.optimize) + 2 * graphs


def _fuse(
    graph: Path,
    spec: GraphSpec,
    parity_of: Callable[[Path], ParityReport],
    progress: Progress,
    parity_title: str,
) -> tuple[ParityReport, dict[str, int], str]:
    """Fuse, gate the fused graph; fall back to the plain graph if only the fusions break it."""
    fused = graph.with_suffix(".fused.onnx")
    with progress.step(f"applying onnxruntime transformer fusions ({spec.family} graph)"):
        fusions = optimize_graph(graph, fused, spec.family, spec.num_heads, spec.hidden)
        progress.note("fused: " + (", ".join(f"{k} {v}" for k, v in fusions.items()) or "none"))
    with progress.step(f"{parity_title} (fused graph)"):
        try:
            parity = parity_of(fused)
        except ParityError as exc:
            fused.unlink()
            progress.note(f"the fused graph fails the parity gate ({exc}); checking the plain one")
            parity = parity_of(graph)  # raises if the export itself is wrong
            progress.note("skipping --optimize: the fusions break this graph, the plain one passes")
            return parity, {}, f"{SKIPPED} the fused graph failed parity ({exc})"
        os.replace(fused, graph)
        return parity, fusions, "onnxruntime.transformers fusions (exact; no GELU approximation)"


def _gate(
    graph: Path,
    quantized: Path,
    request: VariantRequest,
    agreement_of: Callable[[Path, Path], Agreement],
    progress: Progress,
) -> Agreement:
    agreement = agreement_of(graph, quantized)
    progress.note(
        f"{agreement.agreement:.4f} of {agreement.unit} agree, {agreement.exact_match:.4f} "
        f"of {agreement.texts} texts identical, max abs diff {agreement.max_abs_diff:.3g}"
    )
    return agreement


class _Quantizer:
    """Writes the INT8 graph of ``graph`` with some products kept fp32: dynamic, or static with
    activation ranges calibrated once (on the validation texts, else the self-check sample)."""

    def __init__(
        self,
        graph: Path,
        request: VariantRequest,
        sample: SampleSpec,
        texts: Sequence[str],
        progress: Progress,
        calibrated: _Quantizer | None = None,
    ) -> None:
        self.graph, self.request = graph, request
        self.ranges: Ranges | None = None
        self.calibration: CalibrationInfo | None = None
        if calibrated is not None:  # same fp32 graph, another format: the ranges hold
            self.ranges, self.calibration = calibrated.ranges, calibrated.calibration
            return
        if request.quantize != "int8-static":
            return
        calibration = Calibration(request.calibration, request.percentile)
        source = "--validation texts" if texts else "the self-check sample"
        feeds = sample.feeds(texts) if texts else sample.feeds()
        activations = collect_activations(graph, feeds)
        self.ranges = compute_ranges(activations, calibration)
        tokens = int(sum(int(f["attention_mask"].sum()) for f in feeds))
        self.calibration = CalibrationInfo(
            method=request.calibration,
            percentile=request.percentile if request.calibration == "percentile" else None,
            texts=len(feeds),
            tokens=tokens,
            source=source,
        )
        progress.note(
            f"activation ranges of {len(self.ranges)} tensors calibrated ({calibration.describe()})"
            f" on {len(feeds)} {source}, each run alone ({tokens} tokens)"
        )

    def write(self, dst: Path, keep_nodes: tuple[str, ...] = ()) -> list[str]:
        """Quantize to ``dst``; return every product left fp32."""
        request = self.request
        if self.ranges is None:
            return quantize_int8(
                self.graph,
                dst,
                request.per_channel,
                request.keep_fp32,
                request.int8_format,
                keep_nodes,
            )
        keep = [*matching_nodes(self.graph, request.keep_fp32), *keep_nodes]
        return quantize_static_int8(
            self.graph, dst, self.ranges, request.per_channel, request.int8_format, keep
        )


def _search_fp32_nodes(
    quantizer: _Quantizer,
    quantized: Path,
    agreement_of: Callable[[Path, Path], Agreement],
    progress: Progress,
    sample: SampleSpec,
    failed: Agreement,
) -> tuple[Agreement, list[str]]:
    """Keep the most sensitive products fp32 (1, 2, 4, ... of them, up to half) until the gate
    passes; raise the first failure's error if even half of them in fp32 is not enough."""
    graph, request = quantizer.graph, quantizer.request
    ranking = rank_sensitive_nodes(
        graph, sample.feeds(), request.per_channel, request.int8_format, ranges=quantizer.ranges
    )
    progress.note(
        "the whole graph fails the gate; most sensitive products (relative error): "
        + ", ".join(f"{name} {error:.3f}" for name, error in ranking[:4])
    )
    count, best = 1, (failed.agreement, 0)
    while count <= len(ranking) // 2:
        kept = quantizer.write(quantized, tuple(name for name, _ in ranking[:count]))
        progress.note(f"{count} of {len(ranking)} products kept fp32:")
        agreement = _gate(graph, quantized, request, agreement_of, progress)
        if agreement.agreement >= request.min_agreement:
            return agreement, kept
        best = max(best, (agreement.agreement, count))
        count *= 2
    failed.enforce(
        request.min_agreement,
        f" (the whole graph; keeping up to {count // 2} of its {len(ranking)} most sensitive "
        f"products fp32 reached at best {best[0]:.4f}, with {best[1]})",
    )
    raise AssertionError("unreachable: the failed agreement was below the gate")


@dataclass(frozen=True)
class _Quantized:
    agreement: Agreement
    kept: list[str]  # every product left fp32
    searched: list[str]  # those the sensitivity search added
    calibration: CalibrationInfo | None


def _quantize(
    graph: Path,
    request: VariantRequest,
    agreement_of: Callable[[Path, Path], Agreement],
    progress: Progress,
    sample: SampleSpec,
    texts: Sequence[str],
    dst: Path | None = None,
    calibrated: _Quantizer | None = None,
) -> tuple[_Quantized, _Quantizer]:
    """Quantize, gate against the fp32 graph, and only then replace it (or, with ``dst``, write
    the INT8 graph there and leave the fp32 graph in place). ``calibrated``: reuse its static
    activation ranges (the same fp32 graph quantized to another format)."""
    quantized = graph.with_suffix(f".{request.int8_format}.int8.onnx")
    scales = "per-channel" if request.per_channel else "per-tensor"
    fmt = request.int8_format
    kind = "static" if request.quantize == "int8-static" else "dynamic"
    with progress.step(f"quantizing to {kind} INT8 ({fmt}, {scales} weight scales)"):
        progress.note(INT8_SCHEMES[fmt].summary)
        quantizer = _Quantizer(graph, request, sample, texts, progress, calibrated)
        kept = quantizer.write(quantized)
        if request.keep_fp32:
            progress.note(
                f"{len(kept)} nodes kept fp32 (--keep-fp32 {' '.join(request.keep_fp32)})"
            )
        progress.note(
            f"{graph.stat().st_size / 1e6:.1f} MB fp32 -> {quantized.stat().st_size / 1e6:.1f} MB"
        )
    with progress.step(
        f"accuracy gate: INT8 vs fp32 ONNX (min agreement {request.min_agreement:g}) on "
        f"{current_cpu().describe()}"
    ):
        try:
            agreement = _gate(graph, quantized, request, agreement_of, progress)
            searched: list[str] = []
            if agreement.agreement < request.min_agreement:
                if not request.keep_sensitive:
                    agreement.enforce(request.min_agreement)  # the staging dir is discarded
                agreement, all_kept = _search_fp32_nodes(
                    quantizer, quantized, agreement_of, progress, sample, agreement
                )
                searched = [n for n in all_kept if n not in kept]
                kept = all_kept
        except AccuracyGateError:
            quantized.unlink(missing_ok=True)
            raise
        os.replace(quantized, dst or graph)
    return _Quantized(agreement, kept, searched, quantizer.calibration), quantizer


def _other_formats(
    graph: Path,
    request: VariantRequest,
    agreement_of: Callable[[Path, Path], Agreement],
    progress: Progress,
    sample: SampleSpec,
    texts: Sequence[str],
    fp32_outputs: list[Any],
    atol: float,
) -> tuple[list[Int8Graph], dict[str, str], _Quantizer | None]:
    """The ``--int8-also`` graphs beside ``graph`` (still fp32), each through the same gate and
    with its own self-check sample; those this CPU cannot validate or the gate refuses are left
    out with the reason. Returns the last quantizer, whose static ranges the next can reuse."""
    graphs: list[Int8Graph] = []
    refused: dict[str, str] = {}
    calibrated: _Quantizer | None = None
    cpu = current_cpu()
    for fmt in request.extra_formats:
        scheme = INT8_SCHEMES[fmt]
        if not cpu.has_any(list(scheme.requires_any)):
            refused[fmt] = (
                f"not validated: this export's CPU ({cpu.describe()}) computes {fmt} exactly only "
                f"with {' or '.join(scheme.requires_any)}; export on such a CPU to ship it"
            )
            progress.note(f"--int8-also {fmt}: {refused[fmt]}")
            for _ in range(2):  # the two steps it would have taken
                with progress.step(f"{fmt}: skipped"):
                    pass
            continue
        file = f"model.int8-{fmt}.onnx"
        other = request.model_copy(update={"int8_format": fmt})
        try:
            result, calibrated = _quantize(
                graph, other, agreement_of, progress, sample, texts, graph.parent / file, calibrated
            )
        except AccuracyGateError as exc:
            refused[fmt] = str(exc).removesuffix("; the bundle was not written")
            progress.note(f"--int8-also {fmt} left out: {refused[fmt]}")
            continue
        agreement = result.agreement
        graphs.append(
            Int8Graph(
                file=file,
                sha256=sha256_of(graph.parent / file),
                quantization="int8-static" if request.quantize == "int8-static" else "int8-dynamic",
                int8_format=fmt,
                requires_cpu_features=list(scheme.requires_any),
                validated_on=cpu,
                kept_fp32_nodes=len(result.kept),
                kept_fp32_sensitive=result.searched,
                min_agreement=request.min_agreement,
                agreement=round(agreement.agreement, 6),
                exact_match=round(agreement.exact_match, 6),
                max_abs_diff_vs_fp32=agreement.max_abs_diff,
                validation_size=agreement.texts,
                selfcheck=build_selfcheck(sample.outputs(graph.parent / file), fp32_outputs, atol),
            )
        )
    return graphs, refused, calibrated


def ship_graph(
    graph: Path,
    spec: GraphSpec,
    request: VariantRequest,
    parity_of: Callable[[Path], ParityReport],
    agreement_of: Callable[[Path, Path], Agreement],
    progress: Progress,
    parity_title: str,
    sample: SampleSpec,
    texts: Sequence[str] = (),
) -> tuple[ParityReport, VariantInfo | None, SelfCheck, list[Int8Graph]]:
    """Leave the graph to ship at ``graph`` (and the ``--int8-also`` graphs beside it); return
    its parity report, the variant record, the self-check sample the service re-runs at start-up
    and the other INT8 graphs. ``texts``: the --validation texts (static INT8 calibrates on
    them)."""
    fp32_sha = sha256_of(graph)
    if request.optimize:
        parity, fusions, optimizer = _fuse(graph, spec, parity_of, progress, parity_title)
    else:
        with progress.step(parity_title):
            parity = parity_of(graph)
        fusions, optimizer = {}, None
    fp32_outputs = sample.outputs(graph)
    if request.plain:
        return parity, None, build_selfcheck(fp32_outputs, None, parity.atol), []
    base = VariantInfo(
        optimized=request.optimize and not (optimizer or "").startswith(SKIPPED),
        optimizer=optimizer,
        fusions=fusions,
        fp32_sha256=fp32_sha,
    )
    if request.quantize is None:
        return parity, base, build_selfcheck(fp32_outputs, None, parity.atol), []
    others, refused, calibrated = _other_formats(
        graph, request, agreement_of, progress, sample, texts, fp32_outputs, parity.atol
    )
    base = base.model_copy(update={"int8_formats_refused": refused})
    try:
        result, _ = _quantize(
            graph, request, agreement_of, progress, sample, texts, calibrated=calibrated
        )
    except AccuracyGateError as exc:
        if not request.fallback_fp32:
            for other in others:
                (graph.parent / other.file).unlink(missing_ok=True)
            raise
        progress.note(f"shipping the fp32 graph (--fallback-fp32): {exc}")
        reason = str(exc).removesuffix("; the bundle was not written")
        return (
            parity,
            base.model_copy(update={"quantization_refused": reason}),
            build_selfcheck(fp32_outputs, None, parity.atol),
            others,
        )
    agreement, kept = result.agreement, result.kept
    selfcheck = build_selfcheck(sample.outputs(graph), fp32_outputs, parity.atol)
    static = request.quantize == "int8-static"
    return (
        parity,
        base.model_copy(
            update={
                "quantization": "int8-static" if static else "int8-dynamic",
                "calibration": result.calibration,
                "int8_format": request.int8_format,
                "requires_cpu_features": list(INT8_SCHEMES[request.int8_format].requires_any),
                "validated_on": current_cpu(),
                "per_channel": request.per_channel,
                "kept_fp32": list(request.keep_fp32),
                "kept_fp32_nodes": len(kept),
                "kept_fp32_sensitive": result.searched,
                "min_agreement": request.min_agreement,
                "agreement": round(agreement.agreement, 6),
                "exact_match": round(agreement.exact_match, 6),
                "max_abs_diff_vs_fp32": agreement.max_abs_diff,
                "validation_size": agreement.texts,
            }
        ),
        selfcheck,
        others,
    )
