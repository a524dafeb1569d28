"""Static INT8: activation ranges calibrated once at export, so an answer ignores its batch-mates.

Dynamic INT8 picks one activation scale per tensor per call, i.e. over the whole padded batch: a
text's tags can change with the texts it is batched with. Here every weight product's input gets a
fixed u8 scale and zero point measured on calibration texts, each run alone (no padding enters the
ranges). The graph is written in QDQ form: ``QuantizeLinear -> DequantizeLinear`` on the activation,
``DequantizeLinear`` on the INT8 weight; ONNX Runtime fuses each such MatMul into one integer
product with a float rescale (``MatMulIntegerToFloat``), the same kernels dynamic INT8 uses, in the
same formats (:data:`export.variants.graphs.INT8_SCHEMES`), so the exactness rules carry over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from export.variants.graphs import _gemm_to_matmul
from export.variants.request import DEFAULT_CALIBRATION, DEFAULT_PERCENTILE, CalibrationMethod
from export.variants.schemes import Int8Format

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
Ranges = dict[str, tuple[float, float]]
# Values kept per activation tensor for the histogram methods: enough for a 1e-5 tail.
_MAX_SAMPLES = 2_000_000


@dataclass(frozen=True)
class Calibration:
    method: CalibrationMethod = DEFAULT_CALIBRATION
    percentile: float = DEFAULT_PERCENTILE  # percentile method: share of values inside the range

    def describe(self) -> str:
        return f"percentile {self.percentile:g}" if self.method == "percentile" else self.method


def weight_products(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMuls with a constant 2-D weight (attention-score products of two activations excluded)."""
    ranks = {i.name: len(i.dims) for i in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "MatMul" and ranks.get(n.input[1]) == 2]


def collect_activations(graph: Path, feeds: Sequence[dict[str, IntArray]]) -> dict[str, FloatArray]:
    """Every weight product's input over all real tokens of ``feeds`` (flattened, fp32 graph);
    each feed is one text without padding."""
    model = onnx.load(str(graph))
    _gemm_to_matmul(model.graph)
    wanted = sorted({n.input[0] for n in weight_products(model)})
    present = {o.name for o in model.graph.output}
    for name in wanted:
        if name not in present:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    chunks: dict[str, list[FloatArray]] = {name: [] for name in wanted}
    for feed in feeds:
        if feed["input_ids"].shape[0] != 1 or not feed["attention_mask"].all():
            raise ValueError("calibration runs one unpadded text per call")
        real = feed["input_ids"].shape[1]
        outputs = session.run(wanted, {k: v for k, v in feed.items() if k in inputs})
        for name, value in zip(wanted, outputs, strict=True):
            rows = np.asarray(value, dtype=np.float32)
            rows = rows[0] if rows.ndim == 3 else rows  # [positions, features]
            # A graph that pads inside (Longformer, to whole attention blocks) pads at the end:
            # only the text's own positions count, so padding never widens a range.
            chunks[name].append(rows[:real].ravel())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _entropy_range(values: FloatArray) -> tuple[float, float]:
    """KL-divergence threshold (TensorRT's method) through onnxruntime's own histogram code."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    collector = HistogramCollector("entropy", False, 2048, 128, 99.999, "same")
    collector.collect({"x": values})
    low, high = collector.compute_collection_result()["x"][:2]  # then the histogram
    return float(low), float(high)


def compute_ranges(activations: dict[str, FloatArray], calibration: Calibration) -> Ranges:
    """(low, high) per activation tensor; always containing 0 so that zero is exact."""
    rng = np.random.default_rng(0)
    ranges: Ranges = {}
    for name, values in activations.items():
        if calibration.method == "minmax":
            low, high = float(values.min()), float(values.max())
        else:
            if values.size > _MAX_SAMPLES:
                values = rng.choice(values, _MAX_SAMPLES, replace=False)
            if calibration.method == "percentile":
                tail = 100.0 - calibration.percentile
                low, high = np.percentile(values, [tail, calibration.percentile])
                low, high = float(low), float(high)
            else:
                low, high = _entropy_range(values)
        ranges[name] = (min(low, 0.0), max(high, 0.0))
    return ranges


def _u8_params(low: float, high: float) -> tuple[float, int]:
    scale = (high - low) / 255 or 1.0
    return scale, int(np.clip(np.round(-low / scale), 0, 255))


def _quantize_weight(
    w: FloatArray, per_channel: bool, fmt: Int8Format
) -> tuple[NDArray[np.generic], FloatArray, NDArray[np.generic]]:
    """Weights [in, out] (channels = columns) as the format stores them: values, scales, zeros."""
    axis = 0 if per_channel else None
    if fmt == "u8u8":
        low = np.minimum(w.min(axis=axis), 0.0)
        high = np.maximum(w.max(axis=axis), 0.0)
        scale = np.where(high > low, (high - low) / 255, 1.0).astype(np.float32)
        zero = np.clip(np.round(-low / scale), 0, 255).astype(np.uint8)
        q = np.clip(np.round(w / scale) + zero.astype(np.float32), 0, 255).astype(np.uint8)
        return q, scale, zero
    limit = 63 if fmt == "u8s8-reduced" else 127
    scale = (np.abs(w).max(axis=axis) / limit).astype(np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -limit, limit).astype(np.int8)
    return q, scale, np.zeros_like(scale, dtype=np.int8)


def quantize_static_int8(
    src: Path,
    dst: Path,
    ranges: Ranges,
    per_channel: bool,
    int8_format: Int8Format,
    keep_nodes: Sequence[str] = (),
) -> list[str]:
    """Write the static QDQ graph: every weight product not in ``keep_nodes`` reads a u8
    activation with its calibrated range and an INT8 weight. Returns the products left fp32."""
    model = onnx.load(str(src))
    graph = model.graph
    _gemm_to_matmul(graph)
    inits = {i.name: i for i in graph.initializer}
    products = weight_products(model)
    kept = [n.name for n in products if n.name in set(keep_nodes)]
    quantized_inputs: dict[str, str] = {}  # activation -> its dequantized copy (shared by Q/K/V)
    new_nodes: dict[str, list[onnx.NodeProto]] = {}  # inserted before the named node
    for node in products:
        if node.name in kept:
            continue
        activation, weight_name = node.input[0], node.input[1]
        if activation not in quantized_inputs:
            a_scale, a_zero = _u8_params(*ranges[activation])
            base = f"{activation}.static"
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array(a_scale, np.float32), f"{base}.scale"),
                    numpy_helper.from_array(np.array(a_zero, np.uint8), f"{base}.zero"),
                ]
            )
            new_nodes[node.name] = [
                helper.make_node(
                    "QuantizeLinear",
                    [activation, f"{base}.scale", f"{base}.zero"],
                    [f"{base}.q"],
                    name=f"{base}.quantize",
                ),
                helper.make_node(
                    "DequantizeLinear",
                    [f"{base}.q", f"{base}.scale", f"{base}.zero"],
                    [f"{base}.dq"],
                    name=f"{base}.dequantize",
                ),
            ]
            quantized_inputs[activation] = f"{base}.dq"
        w = numpy_helper.to_array(inits[weight_name]).astype(np.float32)
        q, scale, zero = _quantize_weight(w, per_channel, int8_format)
        wbase = f"{weight_name}.{node.name}.static"
        graph.initializer.extend(
            [
                numpy_helper.from_array(q, f"{wbase}.q"),
                numpy_helper.from_array(scale, f"{wbase}.scale"),
                numpy_helper.from_array(zero, f"{wbase}.zero"),
            ]
        )
        axis = [helper.make_attribute("axis", 1)] if per_channel else []
        dq = helper.make_node(
            "DequantizeLinear",
            [f"{wbase}.q", f"{wbase}.scale", f"{wbase}.zero"],
            [f"{wbase}.dq"],
            name=f"{wbase}.dequantize",
        )
        dq.attribute.extend(axis)
        new_nodes.setdefault(node.name, []).append(dq)
        node.input[0], node.input[1] = quantized_inputs[activation], f"{wbase}.dq"
    ordered: list[onnx.NodeProto] = []
    for node in graph.node:
        ordered.extend(new_nodes.get(node.name, []))
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.value_info[:]
    onnx.save(model, str(dst))
    return kept
