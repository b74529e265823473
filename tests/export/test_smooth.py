"""SmoothQuant: the smoothed fp32 graph computes the same function, and the int8 of it is closer to
float when one input channel is far louder than the rest (the case it exists for)."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from headstart.export.per_token import per_token_activations
from headstart.export.smooth import smooth


def _model(w1, w2, layer_norm=False):
    """x -> [LayerNorm] -> h; y1 = h @ w1, y2 = h @ w2 (two MatMuls reading one activation)."""
    d = w1.shape[0]
    nodes = [helper.make_node("MatMul", ["h", "w1"], ["y1"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["y2"], name="mm2")]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    if layer_norm:
        nodes.insert(0, helper.make_node("LayerNormalization", ["x", "g", "b"], ["h"], name="ln", axis=-1))
        rng = np.random.default_rng(5)
        inits += [numpy_helper.from_array((1 + rng.random(d)).astype(np.float32), "g"),
                  numpy_helper.from_array(rng.standard_normal(d).astype(np.float32), "b")]
    else:
        nodes.insert(0, helper.make_node("Identity", ["x"], ["h"], name="id"))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "t", d])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, None) for y in ("y1", "y2")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def _data(seed=0, d=32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6, d)).astype(np.float32)
    x[..., 3] *= 60  # an outlier channel, as transformers have
    return rng.standard_normal((d, 16)).astype(np.float32), rng.standard_normal((d, 8)).astype(np.float32), x


def test_smoothing_keeps_the_float_function_with_a_mul_or_folded_into_the_layer_norm():
    w1, w2, x = _data()
    for layer_norm, where in ((False, "inserted"), (True, "folded")):
        model = _model(w1, w2, layer_norm)
        before = _run(model, x)
        done = smooth(model, [{"x": x}], 0.7)
        assert done[where] == 1 and sum(done.values()) == 1
        for a, b in zip(before, _run(model, x)):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def _int8(model, tmp_path, name):
    onnx.save(model, str(tmp_path / f"{name}.onnx"))
    quantize_dynamic(str(tmp_path / f"{name}.onnx"), str(tmp_path / f"{name}.q.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    q = onnx.load(str(tmp_path / f"{name}.q.onnx"))
    per_token_activations(q)
    return q


def test_smoothing_cuts_the_int8_error_of_an_outlier_channel(tmp_path):
    w1, w2, x = _data()
    exact = _run(_model(w1, w2), x)
    smoothed = _model(w1, w2)
    smooth(smoothed, [{"x": x}], 0.7)
    err = {name: max(np.abs(a - e).mean() for a, e in zip(_run(_int8(m, tmp_path, name), x), exact))
           for name, m in (("plain", _model(w1, w2)), ("smoothed", smoothed))}
    assert err["smoothed"] < 0.5 * err["plain"], err
