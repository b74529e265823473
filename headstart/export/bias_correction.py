"""Bias correction for int8 convolution weights (Nagel et al. 2019, "Data-Free Quantization",
section 4.2, with the input means measured on calibration inputs instead of derived from BatchNorm).

Rounding a convolution's weights to int8 per channel shifts the expected value of each output
channel by ``(Wq - W) · E[x]``: a small error per layer that does not average out, and that a
deep CNN carries to its features. Subtracting that shift from the float bias before
``quantize_static`` rounds the weights cancels it in expectation; the float graph itself then
differs from the original by the same tiny amount the int8 weights will take back.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def int8_per_channel(w: np.ndarray) -> np.ndarray:
    """``w`` rounded as onnxruntime's ``quantize_static`` stores QInt8 per-channel weights:
    symmetric, one scale per output channel, ``max|w| / 127``."""
    flat = np.abs(w.reshape(w.shape[0], -1)).max(1)
    scale = np.where(flat > 0, flat / 127, 1.0).reshape(-1, *[1] * (w.ndim - 1))
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(w.dtype)


def conv_inputs(proto: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """The tensors ``names`` of ``proto``, one dict per feed (onnxruntime, the graph as it is)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in dict.fromkeys(names) if n not in have)
    with tempfile.TemporaryDirectory(prefix="headstart-probe-") as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    for feed in feeds:
        yield dict(zip(outs, sess.run(None, feed)))


def _input_means(proto: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel mean of each (N, C, H, W) tensor in ``names`` over all ``feeds``."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for got in conv_inputs(proto, names, feeds):
        for n in names:
            x = got[n]
            sums[n] = sums.get(n, 0) + x.sum(axis=(0, *range(2, x.ndim)), dtype=np.float64)
            counts[n] = counts.get(n, 0) + x.size // x.shape[1]
    return {n: sums[n] / counts[n] for n in names}


def correct_conv_biases(proto: Any, feeds: list[dict[str, np.ndarray]], skip: tuple[str, ...] = (),
                        rounded: dict[str, np.ndarray] | None = None) -> int:
    """Subtract ``(Wq - W) · E[x]`` from the bias of every Conv of ``proto`` (in place) whose
    weight is a stored tensor, ``E[x]`` its input's per-channel mean over ``feeds`` and ``Wq`` the
    weight as it will be stored: ``rounded[name]`` where given (GPTQ), else ``int8_per_channel(W)``.
    A Conv without a bias gets one; Convs named in ``skip`` (those that stay float) are left
    alone. Returns how many Convs were corrected."""
    from onnx import numpy_helper

    graph = proto.graph
    init = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    convs = [n for n in graph.node if n.op_type == "Conv" and n.name not in skip and len(n.input) > 1
             and n.input[1] in init
             and (len(n.input) < 3 or (n.input[2] in init and uses[n.input[2]] == 1))]
    if not convs or not feeds:
        return 0
    means = _input_means(proto, [n.input[0] for n in convs], feeds)
    for node in convs:
        w = numpy_helper.to_array(init[node.input[1]])
        wq = rounded[node.input[1]] if rounded and node.input[1] in rounded else int8_per_channel(w)
        shift = (wq - w).reshape(w.shape[0], w.shape[1], -1).sum(2)  # (O, I/groups)
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        mu = means[node.input[0]].reshape(groups, -1)                                 # (groups, I/groups)
        delta = (shift * np.repeat(mu, w.shape[0] // groups, axis=0)).sum(1)
        if len(node.input) > 2 and node.input[2]:
            bias = numpy_helper.to_array(init[node.input[2]]).astype(np.float64)
            init[node.input[2]].CopyFrom(numpy_helper.from_array((bias - delta).astype(w.dtype), node.input[2]))
        else:
            name = f"{node.input[1]}_bias_corrected"
            graph.initializer.append(numpy_helper.from_array((-delta).astype(w.dtype), name))
            if len(node.input) == 2:
                node.input.append(name)
            else:
                node.input[2] = name
    return len(convs)
