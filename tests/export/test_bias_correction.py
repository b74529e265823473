"""Bias correction: it predicts the weights onnxruntime's quantizer stores, and it cancels the mean
shift int8 weights put on each output channel (plain and depthwise convolutions)."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from headstart.export.bias_correction import correct_conv_biases, int8_per_channel
from headstart.export.quantize import _Reader  # the package's reader: one feed dict per call

def _model(with_bias=True):
    """x (n, 4, 9, 9) -> Conv 4->6 (3x3) -> depthwise Conv 6->6 (3x3) -> y; no padding."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    c1 = ["x", "w1"] + (["b1"] if with_bias else [])
    if with_bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b1"))
    nodes = [helper.make_node("Conv", c1, ["h"], name="conv"),
             helper.make_node("Conv", ["h", "w2"], ["y"], name="dw", group=6)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 9, 9])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _inputs():
    x = np.random.default_rng(1).standard_normal((16, 4, 9, 9)).astype(np.float32)
    return x + np.array([3.0, -2.0, 5.0, 1.0], np.float32)[None, :, None, None]  # far from zero mean


def _rounded(model):
    """The same graph with every Conv weight rounded as int8 (float compute)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.name.startswith("w"):
            t.CopyFrom(numpy_helper.from_array(int8_per_channel(numpy_helper.to_array(t)), t.name))
    return out


def _conv_out(model, x, name):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([name], {"x": x})[0]


def test_int8_per_channel_is_what_quantize_static_stores(tmp_path):
    model = _model()
    onnx.save(model, str(tmp_path / "f.onnx"))
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader([{"x": _inputs()}]),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    w1 = numpy_helper.to_array(model.graph.initializer[0])
    stored = q["w1_quantized"].astype(np.float32) * q["w1_scale"].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(stored, int8_per_channel(w1), rtol=0, atol=1e-6)


def test_correction_cancels_the_mean_shift_of_int8_weights():
    model, x = _model(), _inputs()
    before = [np.abs((_conv_out(_rounded(model), x, n) - _conv_out(model, x, n)).mean((0, 2, 3))).max()
              for n in ("h", "y")]
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    assert correct_conv_biases(fixed, [{"x": x}]) == 2
    h_shift = np.abs((_conv_out(_rounded(fixed), x, "h") - _conv_out(model, x, "h")).mean((0, 2, 3))).max()
    assert h_shift < before[0] / 10  # 0.166 -> 0.0016 here: exact but for the border windows
    y_shift = np.abs((_conv_out(_rounded(fixed), x, "y") - _conv_out(model, x, "y")).mean((0, 2, 3))).max()
    assert y_shift < before[1] / 5


def test_a_conv_without_bias_gets_one_and_skipped_convs_are_left_alone():
    model = _model(with_bias=False)
    w2 = numpy_helper.to_array(model.graph.initializer[1]).copy()
    assert correct_conv_biases(model, [{"x": _inputs()}], skip=("dw",)) == 1
    conv, dw = model.graph.node
    assert len(conv.input) == 3 and conv.input[2] in {t.name for t in model.graph.initializer}
    assert list(dw.input) == ["h", "w2"]
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[1]), w2)
