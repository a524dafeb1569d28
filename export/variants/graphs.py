"""ONNX graph rewrites: onnxruntime's transformer fusions and dynamic INT8 quantization.

Both run offline on the exported fp32 file. Fusions are exact rewrites (no approximate GELU), so
the fp32 parity gate against PyTorch still applies to the fused graph. On the blocked Longformer
graph the BERT attention pattern does not exist; only the generic fusions (LayerNorm,
SkipLayerNorm, Gelu) are enabled there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

import onnx

from export.variants.schemes import INT8_SCHEMES, Int8Format

Family = Literal["bert", "longformer"]


def optimize_graph(
    src: Path, dst: Path, family: Family, num_heads: int, hidden: int
) -> dict[str, int]:
    """Write the fused graph to ``dst``; return the fused operator counts that are non-zero."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = False  # exact rewrites only: parity must still hold
    if family == "longformer":
        options.enable_attention = False
        options.enable_embed_layer_norm = False
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    # opt_level 0: Python fusions only; ORT's own (hardware-specific) passes run at load time.
    model = optimize_model(
        str(src),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden,
        optimization_options=options,
        opt_level=0,
    )
    model.save_model_to_file(str(dst))
    stats = model.get_fused_operator_statistics()
    return {op: int(n) for op, n in stats.items() if n}


# Ops that dynamic quantization rewrites; --keep-fp32 counts and excludes only these.
_QUANTIZABLE = frozenset({"MatMul", "Gemm", "Gather", "Attention", "EmbedLayerNormalization"})


def _gemm_to_matmul(graph: onnx.GraphProto) -> int:
    """Rewrite ``Gemm(A, const B, C)`` as ``MatMul(A, B') + C``: dynamic INT8 has no Gemm kernel.

    The Longformer export traces its linear layers as Gemm (2-D inputs); left alone, quantization
    would skip nearly all of its weights. Only plain Gemms (alpha = beta = 1, no transA) change.
    """
    inits = {i.name: i for i in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        if (
            node.op_type != "Gemm"
            or node.input[1] not in inits
            or attrs.get("transA", 0)
            or not plain
        ):
            nodes.append(node)
            continue
        weight = onnx.numpy_helper.to_array(inits[node.input[1]])
        name = f"{node.input[1]}.matmul"
        matrix = weight.T if attrs.get("transB", 0) else weight
        graph.initializer.append(onnx.numpy_helper.from_array(matrix.copy(), name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}.matmul" if has_bias else node.output[0]
        nodes.append(
            onnx.helper.make_node("MatMul", [node.input[0], name], [product], name=node.name)
        )
        if has_bias:
            nodes.append(
                onnx.helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias"
                )
            )
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    # Drop initializers only the rewritten Gemms used (their transposed copies replace them).
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return rewritten


def _unsupported_per_channel(graph: onnx.GraphProto) -> list[str]:
    """MatMuls whose constant weight is not 2-D (Longformer's folded global-attention weights):
    ORT's per-channel MatMulInteger rejects their zero points, so they stay fp32."""
    ranks = {i.name: len(i.dims) for i in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and len(n.input) > 1 and ranks.get(n.input[1], 2) != 2
    ]


def matching_nodes(graph: Path, patterns: tuple[str, ...]) -> list[str]:
    """Quantizable nodes whose name matches any of ``patterns`` (``re.search``)."""
    if not patterns:
        return []
    compiled = [re.compile(p) for p in patterns]
    nodes = onnx.load(str(graph), load_external_data=False).graph.node
    return [
        n.name
        for n in nodes
        if n.op_type in _QUANTIZABLE and any(c.search(n.name) for c in compiled)
    ]


def quantize_int8(
    src: Path,
    dst: Path,
    per_channel: bool,
    keep_fp32: tuple[str, ...] = (),
    int8_format: Int8Format = "u8s8-reduced",
    keep_nodes: tuple[str, ...] = (),
) -> list[str]:
    """Dynamic INT8 in ``int8_format`` (see :data:`INT8_SCHEMES`), fp32 everything else.

    Nodes whose names match ``keep_fp32`` (regexes) or are in ``keep_nodes`` (exact names) stay
    fp32 (returned): e.g. a model's FFN output projections, whose inputs (GELU outputs) quantize
    badly with one scale per tensor, or the products the sensitivity search picked.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    scheme = INT8_SCHEMES[int8_format]

    excluded = list(dict.fromkeys([*matching_nodes(src, keep_fp32), *keep_nodes]))
    prepared = onnx.load(str(src))
    _gemm_to_matmul(prepared.graph)
    forced = _unsupported_per_channel(prepared.graph) if per_channel else []
    staged = dst.with_suffix(".prepared.onnx")
    onnx.save(prepared, str(staged))
    logging.disable(logging.WARNING)  # the quantizer's root-logger advice on pre-processing
    try:
        quantize_dynamic(
            str(staged),
            str(dst),
            per_channel=per_channel,
            reduce_range=scheme.reduce_range,
            weight_type=QuantType[scheme.weight_type],
            nodes_to_exclude=excluded + forced,
            extra_options={
                # Fused graphs lose the weights' type information without this (FACTS.md).
                "DefaultTensorType": onnx.TensorProto.FLOAT,
                # Products of two activations (attention scores) stay fp32.
                "MatMulConstBOnly": True,
            },
        )
    finally:
        logging.disable(logging.NOTSET)
        staged.unlink(missing_ok=True)
    # The quantizer's stale shape annotations crash ScatterND in the Longformer graph; ORT
    # infers what it needs at load time.
    model = onnx.load(str(dst))
    del model.graph.value_info[:]
    onnx.save(model, str(dst))
    return excluded


def exact_integer_reference(src: Path, dst: Path) -> int:
    """Rewrite every s8 weight of an integer product as the same product with u8 weights.

    ``(a - za)(b - zb)`` is unchanged when both ``b`` and ``zb`` move by +128, and ONNX Runtime's
    u8 x u8 kernels sum exactly on every CPU: the rewritten graph computes what a u8 x s8 graph
    computes on a CPU without saturation (VNNI/AMX). Comparing a graph with its reference on the
    host proves (or disproves) that its INT8 answers do not depend on the CPU. Covers dynamic
    graphs (``MatMulInteger``: weight and zero point in slots 1 and 3) and static QDQ graphs (a
    ``DequantizeLinear`` of a constant s8 weight: slots 0 and 2, fused by ONNX Runtime into the
    integer product). Returns the number of rewritten products.
    """
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    rewritten = 0
    for node in graph.node:
        if node.op_type == "MatMulInteger" and len(node.input) >= 4:
            slots = (1, 3)
        elif node.op_type == "DequantizeLinear" and len(node.input) >= 3:
            slots = (0, 2)
        else:
            continue
        weight, zero = inits.get(node.input[slots[0]]), inits.get(node.input[slots[1]])
        if weight is None or zero is None or weight.data_type != onnx.TensorProto.INT8:
            continue
        for slot, init in zip(slots, (weight, zero), strict=True):
            shifted = onnx.numpy_helper.to_array(init).astype("int16") + 128
            name = f"{init.name}.u8"
            if name not in inits:
                inits[name] = onnx.numpy_helper.from_array(shifted.astype("uint8"), name)
                graph.initializer.append(inits[name])
            node.input[slot] = name
        rewritten += 1
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.save(model, str(dst))
    return rewritten
