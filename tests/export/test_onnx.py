"""ONNX export: the exported file gives the bundle's outputs (onnxruntime vs PyTorch on the same
inputs, dynamic batch and sequence axes), says how to prepare inputs, and runs with onnxruntime,
numpy and pillow in a virtualenv that has neither headstart nor torch."""
import json
import subprocess
import sys
import venv

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.data.unlabeled import read_image_files, read_unlabeled
from headstart.export.onnx import check_parity, export_onnx
from tests.conftest import write_image_folder, write_text_csv


@pytest.fixture(scope="module")
def exported(tiny_bundles, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    est = headstart.load(tiny_bundles["img"])
    inputs = read_image_files(write_image_folder(out / "inputs", 7, 3))
    path, parity = export_onnx(est, out / "img", inputs)
    return est, inputs, path, parity


def test_image_export_matches_the_bundle_on_real_inputs(exported):
    _, inputs, path, parity = exported
    assert (parity.n, parity.real_inputs, parity.argmax_agreement) == (len(inputs), True, 1.0)
    assert parity.max_abs_diff <= 1e-4


def test_the_onnx_file_describes_its_inputs_and_classes(exported):
    est, _, path, _ = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    meta = json.loads(props["headstart"])
    assert meta == json.loads(path.with_name("export.json").read_text())
    size = est.model_.backbone.pretrained_cfg.input_size
    assert meta["classes"] == [str(c) for c in est.classes_] and meta["inputs"]["size"] == size
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert isinstance(dims[0].dim_param, str) and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, size, size]


def test_text_export_has_dynamic_batch_and_sequence_axes(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["txt"])
    texts = read_unlabeled(write_text_csv(tmp_path / "t.csv", 30, 4))
    path, parity = export_onnx(est, tmp_path / "txt", texts)
    assert parity.max_abs_diff <= 1e-4 and parity.argmax_agreement == 1.0
    assert (tmp_path / "txt" / "tokenizer").is_dir()
    again = check_parity(est, path, texts.subset(range(3)))  # another batch size and length
    assert again.n == 3 and again.max_abs_diff <= 1e-4


def test_export_cli_prints_the_parity(tiny_bundles, tmp_path):
    data = write_image_folder(tmp_path / "inputs", 4, 5)
    r = CliRunner().invoke(app, ["export", str(tiny_bundles["img"]), "--out", str(tmp_path / "e"), "--data", str(data)])
    assert r.exit_code == 0, r.output
    assert "parity on 12 real inputs" in r.output and "argmax agreement 100.00%" in r.output


def test_predict_py_runs_with_only_onnxruntime_numpy_and_pillow(exported, tmp_path):
    est, inputs, path, _ = exported
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    py = env / "bin" / "python"
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "onnxruntime", "numpy", "pillow"],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    bare = subprocess.run([py, "-c", "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('headstart'))"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert bare.stdout.split() == ["None", "None"]
    files = [str(p) for p in inputs.items]
    res = subprocess.run([py, str(path.with_name("predict.py")), *files], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [g["label"] for g in got] == est.predict(inputs).tolist()
    # preprocessing re-implemented with pillow: the same up to the resize kernel's rounding
    np.testing.assert_allclose([[g["probabilities"][str(c)] for c in est.classes_] for g in got],
                               est.predict_proba(inputs), atol=1e-3)


def test_text_export_keeps_the_last_half_layer_pooling(tmp_path):
    train = write_text_csv(tmp_path / "train.csv", 40, 0)
    est = headstart.Headstart(backbone="tiny:bert", strategy="feature_extraction", verbose=False,
                              preprocessing={"pooling": "mean_last_half"}, runtime={"cache_dir": False}).fit(train)
    texts = read_unlabeled(write_text_csv(tmp_path / "t.csv", 12, 4))
    _, parity = export_onnx(est, tmp_path / "txt", texts)
    assert parity.max_abs_diff <= 1e-4 and parity.argmax_agreement == 1.0
