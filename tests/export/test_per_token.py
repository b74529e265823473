"""Per-token int8 activations: the rewritten graph computes round(x / s_row) x W_int8 rescaled,
as numpy does; float16 embedding tables halve their bytes and stay within float16 error."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from headstart.export.per_token import half_embeddings, per_token_activations


def _matmul_model(path, w):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "t", w.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [x], [y],
                          [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_per_token_matches_a_numpy_reference(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    _matmul_model(tmp_path / "f.onnx", w)
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    model = onnx.load(str(tmp_path / "q.onnx"))
    assert per_token_activations(model) == 1
    x = rng.standard_normal((2, 3, 16)).astype(np.float32)
    x[1, 2] *= 50  # one loud token must not cost the others their resolution
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    s = np.abs(x).max(-1, keepdims=True) / 127
    ws = np.abs(w).max(0) / 127
    ref = (np.round(x / s) @ np.round(w / ws)) * s * ws
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[0], (x @ w)[0], atol=0.1)


def test_half_embeddings_store_float16_and_cast_back(tmp_path):
    table = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Gather", ["emb", "ids"], ["y"], name="g")], "g", [ids], [y],
                          [numpy_helper.from_array(table, "emb")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    assert half_embeddings(model) == ["emb"]
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT16
    out = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"ids": np.asarray([3, 7])})[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, table[[3, 7]], rtol=1e-3)
