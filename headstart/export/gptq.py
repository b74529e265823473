"""GPTQ rounding of Conv weights to the int8 per-channel grid (Frantar et al. 2022, "GPTQ", the
Optimal Brain Quantization update without its lazy batching), for ``quantize_static``.

Plain rounding treats each weight alone. GPTQ rounds the weights of an output channel one input
column at a time and moves the rounding error onto the columns not yet rounded, through the
inverse of the second moment ``H = X Xᵀ`` of the layer's inputs (measured on calibration inputs),
so that the layer's OUTPUT changes least. The grid is the one onnxruntime would use (symmetric,
``max|w| / 127`` per output channel); since GPTQ may move a channel's largest weight, the caller
passes the returned scales to ``quantize_static`` as ``TensorQuantOverrides`` so the stored
integers are exactly these. onnxruntime's own GPTQ (``matmul_nbits_quantizer``) covers weight-only
MatMul, not int8 Conv.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from headstart.export.bias_correction import conv_inputs

DAMP = 0.01  # added to H's diagonal, as a fraction of its mean: H is singular for unseen directions


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _patches(x: np.ndarray, node: Any, k: tuple[int, int]) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) windows a Conv with ``k`` reads from ``x`` (its pads and strides)."""
    from numpy.lib.stride_tricks import sliding_window_view

    p = _attr(node, "pads", [0, 0, 0, 0])
    s = _attr(node, "strides", [1, 1])
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    return sliding_window_view(x, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]


def _second_moment(x: np.ndarray, node: Any, w: np.ndarray) -> np.ndarray:
    """H (rows sharing one H, D, D): one for a plain Conv, one per channel for a depthwise one.
    One image at a time: the unfolded windows of a whole batch can take gigabytes."""
    k = tuple(w.shape[2:])
    depthwise = w.shape[1] == 1 and _attr(node, "group", 1) == x.shape[1]
    h = 0
    for i in range(len(x)):
        win = _patches(x[i:i + 1].astype(np.float64), node, k)[0]     # C Ho Wo kh kw
        if depthwise:
            cols = win.reshape(x.shape[1], -1, k[0] * k[1])
            h = h + np.einsum("cpi,cpj->cij", cols, cols, optimize=True)
        else:
            cols = win.transpose(0, 3, 4, 1, 2).reshape(x.shape[1] * k[0] * k[1], -1)
            h = h + (cols @ cols.T)[None]
    return h


def _supported(node: Any, w: np.ndarray) -> bool:
    plain = _attr(node, "group", 1) == 1
    depthwise = w.shape[1] == 1 and _attr(node, "group", 1) == w.shape[0]
    return w.ndim == 4 and (plain or depthwise) and all(d == 1 for d in _attr(node, "dilations", [1, 1]))


def gptq_rows(w: np.ndarray, h: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Round ``w`` (B, O, D) to ``scale`` (B, O) * int8 column by column, ``h`` (B, D, D) the input
    second moment each of the B row blocks sees."""
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    d = h.shape[-1]
    diag = np.einsum("bii->bi", h)
    h[:, np.arange(d), np.arange(d)] = np.where(diag == 0, 1.0, diag)  # inputs never seen
    h += (DAMP * np.einsum("bii->bi", h).mean(1))[:, None, None] * np.eye(d)
    u = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)       # upper: H⁻¹ = Uᵀ U
    q = np.zeros_like(w)
    for i in range(d):
        q[:, :, i] = np.clip(np.round(w[:, :, i] / scale), -127, 127) * scale
        err = (w[:, :, i] - q[:, :, i]) / u[:, i, i][:, None]
        w[:, :, i + 1:] -= err[:, :, None] * u[:, i, i + 1:][:, None, :]
    return q


def gptq_conv_weights(proto: Any, feeds: list[dict[str, np.ndarray]], skip: tuple[str, ...] = ()
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For each Conv of ``proto`` with a stored weight (plain or depthwise; not those in ``skip``):
    its GPTQ-rounded weight and per-channel scales, by weight name. ``proto`` is not changed."""
    from onnx import numpy_helper

    init = {i.name: i for i in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv" and n.name not in skip and len(n.input) > 1
             and n.input[1] in init]
    weights = {n.input[1]: numpy_helper.to_array(init[n.input[1]]) for n in convs}
    convs = [n for n in convs if _supported(n, weights[n.input[1]])]
    h: dict[str, np.ndarray] = {}
    for got in conv_inputs(proto, [n.input[0] for n in convs], feeds):
        for n in convs:
            h[n.name] = h.get(n.name, 0) + _second_moment(got[n.input[0]], n, weights[n.input[1]])
    rounded, scales = {}, {}
    for n in convs:
        w = weights[n.input[1]]
        top = np.abs(w.reshape(w.shape[0], -1)).max(1)
        scale = np.where(top > 0, top / 127, 1.0)
        if w.shape[1] == 1 and _attr(n, "group", 1) == w.shape[0]:      # depthwise: one H per channel
            q = gptq_rows(w.reshape(w.shape[0], 1, -1), h[n.name], scale[:, None])
        else:
            q = gptq_rows(w.reshape(1, w.shape[0], -1), h[n.name], scale[None])
        rounded[n.input[1]] = q.reshape(w.shape).astype(w.dtype)
        scales[n.input[1]] = scale.astype(np.float32)
    return rounded, scales


def scale_overrides(scales: dict[str, np.ndarray]) -> dict[str, list[dict[str, Any]]]:
    """``TensorQuantOverrides`` for ``quantize_static``: these per-channel scales, zero point 0."""
    return {name: [{"axis": 0, "scale": np.float32(v), "zero_point": np.int8(0)} for v in s]
            for name, s in scales.items()}

