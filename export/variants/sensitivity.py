"""Which weight matrices lose most to INT8: ranks a graph's MatMuls by their own quantization error.

When a fully quantized graph fails the accuracy gate, the export keeps the most sensitive
products in fp32 and tries again (``export.variants.ship``). Each MatMul with a constant 2-D weight
is scored on its own fp32 inputs, so upstream error does not blur the ranking: its inputs are
quantized as the runtime would (u8, one asymmetric scale per call) and its weights as the format
does (per output channel or per tensor), and the score is the root mean over output channels of
``|Q(x)Q(w_c) - x w_c|^2 / |x w_c|^2``: per channel, so one large channel cannot hide the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import numpy_helper

from export.variants.graphs import _gemm_to_matmul
from export.variants.schemes import Int8Format

FloatArray = NDArray[np.float32]


def _fake_quantize_activations(
    x: FloatArray, fixed: tuple[float, float] | None = None
) -> FloatArray:
    """u8 with one asymmetric scale: over the whole tensor, as DynamicQuantizeLinear does, or
    the calibrated ``fixed`` range of static INT8 (values outside it clip)."""
    low, high = fixed or (min(float(x.min()), 0.0), max(float(x.max()), 0.0))
    scale = (high - low) / 255 or 1.0
    zero = np.round(-low / scale)
    return ((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)


def _fake_quantize_weights(w: FloatArray, per_channel: bool, fmt: Int8Format) -> FloatArray:
    """Weights [in, out] in ``fmt``: symmetric s8 (7-bit with reduce_range) or asymmetric u8."""
    axis = 0 if per_channel else None
    if fmt == "u8u8":
        low = np.minimum(w.min(axis=axis, keepdims=True), 0.0)
        high = np.maximum(w.max(axis=axis, keepdims=True), 0.0)
        scale = np.where(high > low, (high - low) / 255, 1.0)
        zero = np.round(-low / scale)
        return ((np.clip(np.round(w / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)
    limit = 63 if fmt == "u8s8-reduced" else 127
    scale = np.abs(w).max(axis=axis, keepdims=True) / limit
    scale = np.where(scale > 0, scale, 1.0)
    return (np.clip(np.round(w / scale), -limit, limit) * scale).astype(np.float32)


def rank_sensitive_nodes(
    graph: Path,
    feeds: Sequence[dict[str, NDArray[np.int64]]],
    per_channel: bool,
    fmt: Int8Format,
    skip: Sequence[str] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> list[tuple[str, float]]:
    """(node name, relative error) of every constant-weight MatMul, worst first.

    ``ranges``: static INT8's calibrated activation ranges (by tensor name); dynamic otherwise.
    """
    model = onnx.load(str(graph))
    _gemm_to_matmul(model.graph)
    weights = {
        i.name: numpy_helper.to_array(i) for i in model.graph.initializer if len(i.dims) == 2
    }
    targets = [
        n
        for n in model.graph.node
        if n.op_type == "MatMul" and n.input[1] in weights and n.name not in skip
    ]
    exposed = sorted({n.input[0] for n in targets} - {o.name for o in model.graph.output})
    for name in exposed:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    wanted = sorted({n.input[0] for n in targets})
    error = {n.name: np.zeros(weights[n.input[1]].shape[1]) for n in targets}
    norm = {n.name: np.zeros(weights[n.input[1]].shape[1]) for n in targets}
    for feed in feeds:
        outputs = session.run(wanted, {k: v for k, v in feed.items() if k in inputs})
        values = dict(zip(wanted, outputs, strict=True))
        for node in targets:
            x = values[node.input[0]].astype(np.float32)
            w = weights[node.input[1]].astype(np.float32)
            exact = (x @ w).reshape(-1, w.shape[1])
            fixed = ranges[node.input[0]] if ranges is not None else None
            approx = _fake_quantize_activations(x, fixed) @ _fake_quantize_weights(
                w, per_channel, fmt
            )
            error[node.name] += np.square(approx.reshape(exact.shape) - exact).sum(axis=0)
            norm[node.name] += np.square(exact).sum(axis=0)
    scores = {}
    for name, sums in error.items():
        live = norm[name] > 0
        scores[name] = float(np.sqrt(np.mean(sums[live] / norm[name][live]))) if live.any() else 0.0
    return sorted(scores.items(), key=lambda item: -item[1])
