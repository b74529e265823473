"""GPTQ: its rounded weights lie on the int8 grid and change a layer's output less than rounding
each weight to the nearest step, and quantize_static stores exactly those integers when given the
returned scales."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from headstart.export.bias_correction import int8_per_channel
from headstart.export.gptq import gptq_conv_weights, scale_overrides
from headstart.export.quantize import _Reader  # the package's reader: one feed dict per call


def _model():
    """x (n, 8, 10, 10) -> Conv 8->12 (3x3, pad 1) -> h -> depthwise Conv (3x3) -> y."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((12, 8, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((12, 1, 3, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["h", "w2"], ["y"], name="dw", group=12)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 8, 10, 10)).astype(np.float32)
    x[:, 1] = x[:, 0] + 0.1 * x[:, 1]  # correlated input channels: where GPTQ's compensation pays
    return x


def _conv(x, w):
    import torch
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()


def test_gptq_lands_on_the_grid_and_beats_nearest_rounding_on_the_layer_output():
    model = _model()
    rounded, scales = gptq_conv_weights(model, [{"x": _inputs()}])
    assert set(rounded) == {"w1", "w2"}
    w = numpy_helper.to_array(model.graph.initializer[0])
    steps = rounded["w1"] / scales["w1"].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert np.abs(steps).max() < 127.01
    x = _inputs(seed=2)  # other inputs than those it was fitted on
    err_gptq = np.mean((_conv(x, rounded["w1"]) - _conv(x, w)) ** 2)
    err_nearest = np.mean((_conv(x, int8_per_channel(w)) - _conv(x, w)) ** 2)
    assert err_gptq < 0.9 * err_nearest  # 0.84 here


def test_quantize_static_stores_the_gptq_integers_with_the_scale_overrides(tmp_path):
    model = _model()
    rounded, scales = gptq_conv_weights(model, [{"x": _inputs()}])
    for t in model.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(rounded[t.name], t.name))
    onnx.save(model, str(tmp_path / "f.onnx"))
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader([{"x": _inputs()}]),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"TensorQuantOverrides": scale_overrides(scales)})
    q = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    for name in ("w1", "w2"):
        stored = q[f"{name}_quantized"].astype(np.float32) * q[f"{name}_scale"].reshape(-1, 1, 1, 1)
        np.testing.assert_allclose(stored, rounded[name], rtol=0, atol=1e-6)
