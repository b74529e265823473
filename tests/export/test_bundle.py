import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import headstart
from headstart.api import Headstart
from tests.conftest import write_image_folder, write_text_csv


@pytest.fixture(scope="module", params=["image", "text"])
def fitted(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "image":
        train, test = write_image_folder(tmp / "train", 12, 0), write_image_folder(tmp / "test", 6, 1)
        spec = "tiny:cnn"
    else:
        train, test = write_text_csv(tmp / "train.csv", 40, 0), write_text_csv(tmp / "test.csv", 20, 1)
        spec = "tiny:bert"
    est = Headstart(backbone=spec, strategy="fine_tuning", strategy_params={"steps": 8}, verbose=False, run={"out": tmp / "bundle"}, runtime={"cache_dir": tmp / "cache"}).fit(train, test=test)
    return est, test, tmp / "bundle"


def test_bundle_layout_has_no_pickle(fitted):
    _, _, d = fitted
    names = {p.name for p in d.iterdir()}
    assert {"model.safetensors", "headstart.json", "README.md", "backbone"} <= names
    assert not [p for p in d.rglob("*") if p.suffix in (".pt", ".pth", ".pkl", ".bin", ".pickle")]
    meta = json.loads((d / "headstart.json").read_text())
    for key in ("backbone", "head", "classes", "strategy", "metrics", "versions"):
        assert key in meta
    assert meta["backbone"]["pretrained_cfg"]["modality"] in ("image", "text")


def test_load_reproduces_the_evaluation_predictions_exactly(fitted):
    est, test, d = fitted
    loaded = headstart.load(d)
    assert loaded.predict(test).tolist() == est.metrics_["test"]["predictions"]
    np.testing.assert_allclose(loaded.predict_proba(test), est.predict_proba(test), atol=1e-6)
    assert loaded.evaluate(test)["accuracy"] == est.metrics_["test"]["accuracy"]


def test_a_flipped_byte_is_rejected_naming_the_file(fitted, tmp_path):
    d = Path(shutil.copytree(fitted[2], tmp_path / "copy"))
    w = d / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-10] ^= 0xFF
    w.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="model.safetensors: SHA-256 does not match"):
        headstart.load(d)


def test_model_card_reports_metrics(fitted):
    _, _, d = fitted
    card = (d / "README.md").read_text()
    assert "## Metrics" in card and "accuracy" in card and "Intended use" in card
