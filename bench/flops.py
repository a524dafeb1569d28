"""Matmul FLOP counts of the benchmarked models and the GEMM peak they are measured against.

Counts are the dense matmuls only (2 FLOPs per multiply-add), for the real (unpadded) tokens:
projections, attention scores and attention x values, feed-forward, the classifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def bert_matmul_flops(tokens: int, config: dict[str, Any], num_labels: int) -> float:
    """One sequence of ``tokens`` tokens (special tokens included) through BERT + linear head."""
    h, inner, layers = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
    )
    per_layer = 2 * tokens * (4 * h * h + 2 * h * inner) + 2 * 2 * tokens * tokens * h
    return float(layers * per_layer + 2 * tokens * h * num_labels)


def longformer_matmul_flops(tokens: int, config: dict[str, Any], num_labels: int) -> float:
    """One window: projections and feed-forward for every token, banded attention (w + 1 keys
    per query, as HF defines the window), plus the CLS token's global row and column."""
    h, inner, layers = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
    )
    windows = config["attention_window"]
    windows = windows if isinstance(windows, list) else [windows] * layers
    total = 0.0
    for w in windows:
        keys = min(tokens, w + 1)
        total += 2 * tokens * (4 * h * h + 2 * h * inner)  # projections + feed-forward
        total += 2 * 2 * tokens * keys * h  # banded scores and weighted values
        total += 2 * 2 * tokens * h + 2 * 4 * h * h  # global CLS row/column, its projections
    return total + 2 * (h * h + h * num_labels)  # classification head on CLS


def gemm_sessions(n: int, threads: int) -> dict[str, tuple[Any, dict[str, np.ndarray]]]:
    """ORT sessions for an n x n x n fp32 MatMul and INT8 MatMulInteger (weights as constants)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    def session(nodes: list[Any], inputs: list[Any], inits: list[Any], out_type: int) -> Any:
        graph = helper.make_graph(
            nodes,
            "gemm",
            inputs,
            [helper.make_tensor_value_info("c", out_type, [n, n])],
            initializer=inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        return ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])

    fp32 = session(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
        [numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "b")],
        TensorProto.FLOAT,
    )
    int8 = session(
        [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["c"])],
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [
            numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "b"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "za"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "zb"),
        ],
        TensorProto.INT32,
    )
    a32 = rng.standard_normal((n, n)).astype(np.float32)
    a8 = rng.integers(0, 256, (n, n), dtype=np.uint8)
    return {"fp32": (fp32, {"a": a32}), "int8": (int8, {"a": a8})}
