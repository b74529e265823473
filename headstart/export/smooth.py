"""SmoothQuant for the dynamic int8 MatMuls of a text export (Xiao et al. 2022, "SmoothQuant:
Accurate and Efficient Post-Training Quantization for Large Language Models").

A transformer's activations have a few channels far larger than the rest, so one scale per token
(``headstart.export.per_token``) spends most of its 255 levels on them and the other channels lose
resolution; weights are easy to quantize. SmoothQuant moves part of that difficulty from the
activation to the weight with an exact rescaling:

    X W = (X diag(s)^-1) (diag(s) W),   s_j = max|X_j|^a / max|W_j|^(1 - a)

with max|X_j| measured per input channel on calibration inputs. Here the ``1/s`` is folded into
the ``LayerNormalization`` that produces X where there is one (its scale and bias), otherwise a
``Mul`` by a constant vector is inserted before the MatMuls that read X; every MatMul that
reads X gets its weight rows multiplied by ``s``. In float the model computes the same function
(test: max |Δ| ~1e-6); only the int8 rounding changes. Works on the fp32 ONNX before
``quantize_dynamic``: plain ONNX in, plain ONNX out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import numpy as np

ALPHA = 0.5  # the paper's default; migration strength between activations (1) and weights (0)


def weight_matmuls(model: Any) -> dict[str, list[Any]]:
    """MatMul nodes that read a stored 2-D weight, grouped by the activation they read."""
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2 \
                and node.input[0] not in inits:
            groups[node.input[0]].append(node)
    return dict(groups)


def channel_max(model: Any, names: Iterable[str], feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """max |x| per last-axis channel of the tensors ``names``, over every feed (onnxruntime run
    of a copy of ``model`` with those tensors as extra outputs)."""
    import onnx
    import onnxruntime as ort

    names = list(names)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in names if n not in have)
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    out: dict[str, np.ndarray] = {}
    for feed in feeds:
        for n, v in zip(names, sess.run(names, feed)):
            m = np.abs(v.reshape(-1, v.shape[-1])).max(0)
            out[n] = m if n not in out else np.maximum(out[n], m)
    return out


def smooth(model: Any, feeds: Iterable[dict[str, np.ndarray]], alpha: float = ALPHA) -> dict[str, int]:
    """Apply SmoothQuant to ``model`` (an onnx ModelProto, in place) with activation ranges from
    ``feeds``; returns how many activations were folded into a LayerNorm and how many got a Mul."""
    from onnx import helper, numpy_helper

    g = model.graph
    groups = weight_matmuls(model)
    act = channel_max(model, groups, feeds)
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    readers: dict[str, int] = defaultdict(int)
    for n in g.node:
        for i in n.input:
            readers[i] += 1
    folded = inserted = 0
    for x, mms in groups.items():
        weights = [numpy_helper.to_array(inits[m.input[1]]) for m in mms]  # each (D_in, D_out)
        w_max = np.max([np.abs(w).max(1) for w in weights], axis=0)
        s = np.power(np.maximum(act[x], 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1 - alpha)
        s = np.clip(s, 1e-2, 1e2).astype(np.float32)
        for m, w in zip(mms, weights):
            inits[m.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), m.input[1]))
        ln = producer.get(x)
        if ln is not None and ln.op_type == "LayerNormalization" and readers[x] == len(mms) \
                and all(i in inits and readers[i] == 1 for i in ln.input[1:3]):
            for i in ln.input[1:3]:  # gamma, beta: LN(x) / s
                inits[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[i]) / s, i))
            folded += 1
            continue
        inv = x + "_smooth_inv"
        g.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), inv))
        at = min(list(g.node).index(m) for m in mms)
        g.node.insert(at, helper.make_node("Mul", [x, inv], [x + "_smooth"], name=x + "_smooth"))
        for m in mms:
            m.input[0] = x + "_smooth"
        inserted += 1
    return {"folded": folded, "inserted": inserted}
