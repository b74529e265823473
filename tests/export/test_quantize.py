"""int8 export: model.int8.onnx is smaller than the fp32 file, runs in onnxruntime, says it is
int8 (export.json and the file's own metadata), is what predict.py runs, and its agreement
with the bundle is reported; onnxruntime's scratch files stay out of the working directory."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.data.unlabeled import read_image_files, read_unlabeled
from headstart.export.onnx import export_onnx
from headstart.export.onnx_predict import predict
from headstart.export.quantize import quantize_export
from tests.conftest import write_image_folder, write_text_csv


def _meta(path):
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["headstart"])


def test_text_int8_is_smaller_runs_and_says_int8(tiny_bundles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    est = headstart.load(tiny_bundles["txt"])
    texts = read_unlabeled(write_text_csv(tmp_path / "t.csv", 30, 4))
    fp32, _ = export_onnx(est, tmp_path / "e", texts)
    before = set(os.listdir(tmp_path))
    path, parity = quantize_export(est, tmp_path / "e", texts)
    assert set(os.listdir(tmp_path)) == before  # no *.onnx / *.data scratch in the CWD
    assert path.name == "model.int8.onnx" and path.stat().st_size < fp32.stat().st_size
    meta = json.loads((tmp_path / "e" / "export.json").read_text())
    assert meta == _meta(path) and meta["file"] == "model.int8.onnx"
    assert meta["quantization"]["weights"] == "int8" and meta["quantization"]["method"].startswith("dynamic")
    assert "quantization" not in _meta(fp32)
    assert parity.n == len(texts) and parity.real_inputs and 0 <= parity.argmax_agreement <= 1
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops


def test_image_int8_is_static_qdq_calibrated_and_predict_py_runs_it(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["img"])
    inputs = read_image_files(write_image_folder(tmp_path / "inputs", 5, 3))
    fp32, _ = export_onnx(est, tmp_path / "e", inputs)
    path, parity = quantize_export(est, tmp_path / "e", inputs)
    assert path.stat().st_size < fp32.stat().st_size
    q = _meta(path)["quantization"]
    assert q["method"].startswith("static QDQ") and q["calibration"] == f"min/max on {len(inputs)} given inputs"
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
    assert parity.n == len(inputs) and np.isfinite(parity.max_abs_diff)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    files = [str(p) for p in inputs.items]
    x = np.random.default_rng(0).standard_normal((3, *sess.get_inputs()[0].shape[1:])).astype(np.float32)
    assert sess.run(None, {"pixels": x})[0].shape == (3, len(est.classes_))
    got = predict(files, tmp_path / "e")
    assert len(got) == len(files) and all(g["label"] in [str(c) for c in est.classes_] for g in got)


def test_export_cli_int8_prints_both_parities(tiny_bundles, tmp_path):
    data = write_image_folder(tmp_path / "inputs", 4, 5)
    out = tmp_path / "e"
    r = CliRunner().invoke(app, ["export", str(tiny_bundles["img"]), "--out", str(out), "--data", str(data), "--int8"])
    assert r.exit_code == 0, r.output
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file()
    assert "int8 parity on 12 real inputs" in r.output and "argmax agreement" in r.output.split("int8 parity")[1]


def test_quantize_export_needs_the_fp32_export_first(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["txt"])
    with pytest.raises(FileNotFoundError, match="model.onnx missing"):
        quantize_export(est, tmp_path / "nothing")


def test_image_int8_rounds_by_gptq_corrects_biases_and_keeps_the_input_conv_float(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["img"])
    inputs = read_image_files(write_image_folder(tmp_path / "inputs", 5, 3))
    export_onnx(est, tmp_path / "e", inputs)
    path, _ = quantize_export(est, tmp_path / "e", inputs)
    q = _meta(path)["quantization"]
    graph = onnx.load(str(path)).graph
    stem = [n for n in graph.node if n.op_type == "Conv" and n.input[0] == "pixels"]
    assert stem and {n.name for n in stem} <= set(q["excluded"])  # reads the float pixels and float weights
    assert stem[0].input[1] in {t.name for t in graph.initializer}
    quantized = [n for n in graph.node if n.op_type == "Conv" and n not in stem]
    assert q["bias_correction"].startswith(f"{len(quantized)} Conv biases") and "given inputs" in q["bias_correction"]
    assert q["weight_rounding"].startswith(f"GPTQ on {len(inputs)} given inputs")


def test_image_int8_without_data_skips_bias_correction_and_gptq(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["img"])
    export_onnx(est, tmp_path / "e")
    path, _ = quantize_export(est, tmp_path / "e")
    q = _meta(path)["quantization"]
    assert q["bias_correction"].startswith("none") and q["weight_rounding"] == "nearest"


def test_first_convs_stay_float_up_to_an_eighth_of_them_and_at_least_the_input_one(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from headstart.export.quantize import _first_convs

    def chain(n):
        w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
        nodes = [helper.make_node("Conv", [f"t{i}", "w"], [f"t{i + 1}"], name=f"c{i}") for i in range(n)]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, None)], [w])
        path = tmp_path / f"{n}.onnx"
        onnx.save(helper.make_model(g), str(path))
        return path

    assert _first_convs(chain(49), 6) == [f"c{i}" for i in range(6)]
    assert _first_convs(chain(16), 6) == ["c0", "c1"]
    assert _first_convs(chain(3), 6) == ["c0"]
