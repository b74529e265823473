"""Per-token activation scales for onnxruntime's dynamic int8 MatMuls (and float16 embeddings).

``quantize_dynamic`` quantizes each MatMul input with ``DynamicQuantizeLinear``: ONE uint8 scale
and zero point for the whole tensor, i.e. the whole padded batch (N, T, D). A token with large
activations (or the padding) then costs every other token its resolution, and a prediction
depends on what else is in the batch. This pass replaces each ``DynamicQuantizeLinear`` by
symmetric per-token quantization (one scale per row of the last axis, as torchao's
``Int8DynamicActivationInt8WeightConfig`` and LLM.int8()'s vector-wise quantization do):

    s = max(|x| over D) / 127                      # (N, T, 1)
    q = round(x / s) + 128  as uint8, zero point 128   # in [1, 255]: an int8 in uint8 clothing

then the downstream ``MatMulInteger`` (uint8 x int8, onnxruntime's fast CPU path) and its
``Cast -> Mul(scale_w)`` as before, and one more ``Mul`` by ``s`` (broadcast over the output
channels). Standard ONNX ops, same opset: the file still runs in plain onnxruntime (predict.py).
Measured here: int8 x int8 ``MatMulInteger`` and opset 21's blocked ``QuantizeLinear`` (one op
for the last four) were 2-7x slower than this on this CPU."""
from __future__ import annotations

from typing import Any

import numpy as np

ZERO_POINT = 128
EPS = 1e-8  # a row of zeros (padding) must not divide by zero


def _const(graph: Any, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    if name not in {i.name for i in graph.initializer}:
        graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def per_token_activations(model: Any) -> int:
    """Rewrite every ``DynamicQuantizeLinear`` of ``model`` (an onnx ModelProto, in place) into
    per-token symmetric quantization; returns how many were rewritten."""
    from onnx import TensorProto, helper

    g = model.graph
    axes = _const(g, "per_token_axes", np.asarray([-1], np.int64))
    inv127 = _const(g, "per_token_inv127", np.asarray(1 / 127, np.float32))
    eps = _const(g, "per_token_eps", np.asarray(EPS, np.float32))
    shift = _const(g, "per_token_shift", np.asarray(float(ZERO_POINT), np.float32))
    nodes, row_scale = [], {}
    for node in g.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        (x,), (q, scale, zp), p = node.input, node.output, node.name + "_pt"
        row_scale[q] = p + "_scale"
        nodes += [
            helper.make_node("Abs", [x], [p + "_abs"], name=p + "_abs"),
            helper.make_node("ReduceMax", [p + "_abs", axes], [p + "_max"], name=p + "_max", keepdims=1),
            helper.make_node("Mul", [p + "_max", inv127], [p + "_s"], name=p + "_s"),
            helper.make_node("Max", [p + "_s", eps], [p + "_scale"], name=p + "_scale"),  # (N, T, 1)
            helper.make_node("Div", [x, p + "_scale"], [p + "_div"], name=p + "_div"),
            helper.make_node("Round", [p + "_div"], [p + "_round"], name=p + "_round"),
            helper.make_node("Add", [p + "_round", shift], [p + "_shift"], name=p + "_shift"),
            helper.make_node("Cast", [p + "_shift"], [q], name=p + "_cast", to=TensorProto.UINT8),
        ]
        # the MatMul's own rescale multiplies by this scalar scale (1) and zero point (128); the
        # row scale is applied after it
        _const(g, scale, np.asarray(1.0, np.float32))
        _const(g, zp, np.asarray(ZERO_POINT, np.uint8))
    del g.node[:]
    g.node.extend(nodes)
    for mm in [n for n in nodes if n.op_type == "MatMulInteger" and n.input[0] in row_scale]:
        _scale_rows(g, mm, row_scale[mm.input[0]])
    return len(row_scale)


def _scale_rows(graph: Any, matmul: Any, scale: str) -> None:
    """After ``matmul -> Cast -> Mul`` (its float output), multiply by the per-token ``scale``."""
    from onnx import helper

    cast = next(n for n in graph.node if n.op_type == "Cast" and matmul.output[0] in n.input)
    mul = next(n for n in graph.node if n.op_type == "Mul" and cast.output[0] in n.input)
    out = mul.output[0]
    mul.output[0] = out + "_per_tensor"
    at = list(graph.node).index(mul) + 1
    graph.node.insert(at, helper.make_node("Mul", [out + "_per_tensor", scale], [out], name=mul.name + "_rows"))


def half_embeddings(model: Any) -> list[str]:
    """Store the weight tables read by ``Gather`` (token/position embeddings) as float16 with a
    ``Cast`` to float32 after the lookup: half their bytes, about 1e-3 relative error, where
    int8 tables cost about a point of argmax agreement on a MiniLM probe. Returns their names."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    done = []
    for node in list(g.node):
        table = node.input[0] if node.op_type == "Gather" else None
        if table not in inits or inits[table].data_type != TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(inits[table]).astype(np.float16), table)
        inits[table].CopyFrom(half)
        out = node.output[0]
        node.output[0] = out + "_half"
        g.node.insert(list(g.node).index(node) + 1, helper.make_node(
            "Cast", [out + "_half"], [out], name=node.name + "_to_float", to=TensorProto.FLOAT))
        done.append(table)
    return done
