"""An exported int8 ONNX folder is loaded by ``headstart.load`` like a bundle: its predictions equal
the folder's own predict.py (and onnxruntime run directly on headstart's prepared inputs), its
lineage (source bundle, export, quantization settings) is in headstart.json and the card, the CLI
predicts and evaluates with it, and a modified ONNX file is refused."""
import csv
import io
import json

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.data.loaders import make_loader
from headstart.data.unlabeled import read_image_files, read_unlabeled
from headstart.export.onnx import _feeds, export_onnx
from headstart.export.onnx_predict import predict
from headstart.export.quantize import quantize_export
from tests.conftest import write_image_folder, write_text_csv


@pytest.fixture(scope="module")
def int8_folders(tiny_bundles, tmp_path_factory):
    """{modality: (int8 folder, the inputs it was checked on)} for the tiny text and image bundles."""
    root = tmp_path_factory.mktemp("int8")
    texts = read_unlabeled(write_text_csv(root / "t.csv", 30, 4))
    images = read_image_files(write_image_folder(root / "images", 5, 3))
    out = {}
    for key, data in (("txt", texts), ("img", images)):
        est = headstart.load(tiny_bundles[key])
        export_onnx(est, root / key, data, source=tiny_bundles[key])
        quantize_export(est, root / key, data)
        out[key] = (root / key, data)
    return out


@pytest.mark.parametrize("key", ["txt", "img"])
def test_load_predicts_as_the_folders_own_predict_py(int8_folders, key):
    folder, data = int8_folders[key]
    est = headstart.load(folder)
    got = est.predict(data)
    ref = predict([str(i) for i in data.items], folder)
    assert [str(g) for g in got] == [r["label"] for r in ref]
    proba = est.predict_proba(data)
    expected = np.asarray([[r["probabilities"][str(c)] for c in est.classes_] for r in ref])
    np.testing.assert_allclose(proba, expected, atol=1e-3 if key == "img" else 1e-5)


@pytest.mark.parametrize("key", ["txt", "img"])
def test_load_runs_the_int8_file_as_onnxruntime_does(int8_folders, key):
    folder, data = int8_folders[key]
    est = headstart.load(folder)
    assert est.model_.path.name == "model.int8.onnx"
    sess = ort.InferenceSession(str(folder / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    bb = est.model_.backbone
    (batch,) = list(make_loader(data, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=64))
    np.testing.assert_array_equal(est.decision_function(data), sess.run(None, _feeds(batch["inputs"]))[0])


def test_lineage_is_in_headstart_json_and_the_card(int8_folders, tiny_bundles):
    folder, _ = int8_folders["img"]
    meta = headstart.load(folder).meta_
    comp = meta["compression"]
    assert meta["format"] == "onnx" and comp["source"] == str(tiny_bundles["img"])
    assert [s["step"] for s in comp["steps"]] == ["onnx", "int8"]
    int8 = comp["steps"][-1]
    assert int8["method"].startswith("static QDQ") and int8["parity"]["n"] == 15 and "excluded" in int8
    assert "test" not in meta["metrics"] and "before_compression" in meta["metrics"]
    card = (folder / "README.md").read_text()
    assert "## Compression" in card and "`int8`: method static QDQ" in card and str(tiny_bundles["img"]) in card


def test_cli_predicts_and_evaluates_with_the_int8_folder(int8_folders, tiny_bundles):
    folder, data = int8_folders["txt"]
    src = tiny_bundles["txt"].parent / "train.csv"
    runner = CliRunner()
    r = runner.invoke(app, ["predict", str(folder), str(src)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["label"] for row in rows] == [str(p) for p in headstart.load(folder).predict(str(src))]
    r = runner.invoke(app, ["eval", str(folder), str(src)])
    assert r.exit_code == 0 and "accuracy" in r.output.lower(), r.output


def test_a_modified_onnx_file_is_refused(int8_folders, tmp_path):
    import shutil

    folder = shutil.copytree(int8_folders["txt"][0], tmp_path / "copy")
    with open(folder / "model.int8.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="model.int8.onnx: SHA-256 does not match headstart.json"):
        headstart.load(folder)


def test_an_int8_texts_outputs_do_not_depend_on_its_batch(int8_folders):
    """Per-token activation scales: a text gets the same logits alone and padded among others."""
    folder, data = int8_folders["txt"]
    est = headstart.load(folder)
    together = est.decision_function(data)
    alone = np.concatenate([est.decision_function(data.subset([i])) for i in range(3)])
    np.testing.assert_allclose(alone, together[:3], atol=1e-5)
