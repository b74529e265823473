import json

import numpy as np
import pytest

import headstart
from headstart.api import Headstart


@pytest.fixture(params=["image", "text"])
def fitted(request, image_data, text_data, tmp_path):
    if request.param == "image":
        est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", strategy_params={"steps": 8},
                        out=tmp_path / "bundle", verbose=False).fit(image_data[0], test=image_data[1])
        return est, image_data[1], tmp_path / "bundle"
    est = Headstart(backbone="tiny:bert", strategy="fine_tuning", strategy_params={"steps": 8},
                    out=tmp_path / "bundle", verbose=False).fit(text_data[0], test=text_data[1])
    return est, text_data[1], tmp_path / "bundle"


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


def test_a_flipped_byte_is_rejected_naming_the_file(fitted):
    _, _, d = fitted
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
