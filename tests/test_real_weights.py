"""The `real` tier: the offline pretrained weights on the data shipped in examples/."""
from pathlib import Path

import numpy as np
import pytest

import headstart

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("img") / "bundle"
    est = headstart.fit(EXAMPLES / "fashion_mnist" / "train", test=EXAMPLES / "fashion_mnist" / "test", verbose=False, runtime={"cache_dir": tmp_path_factory.mktemp("cache")}, run={"out": out})
    return est, out


def test_default_image_transfer_is_far_above_chance(image_model):
    est, _ = image_model
    assert est.model_.backbone.spec == "efficientnet_lite0"
    assert est.model_.backbone.pretrained_cfg.input_size == 112  # 28 px inputs, upsampled 4x
    assert est.metrics_["test"]["accuracy"] >= 0.70  # 20 labels per class; chance is 0.10


def test_image_bundle_reproduces_predictions_with_multiscale_features(image_model):
    est, out = image_model
    loaded = headstart.load(out)
    assert loaded.model_.backbone.pretrained_cfg.feature_taps == est.model_.backbone.pretrained_cfg.feature_taps
    test = EXAMPLES / "fashion_mnist" / "test"
    assert loaded.predict(test).tolist() == est.metrics_["test"]["predictions"]


def test_text_probe_on_minilm_beats_the_majority_class(tmp_path):
    est = headstart.fit(EXAMPLES / "rotten_tomatoes" / "train.csv", test=EXAMPLES / "rotten_tomatoes" / "test.csv", backbone="minilm", strategy="feature_extraction", verbose=False, runtime={"cache_dir": tmp_path})
    assert est.metrics_["test"]["accuracy"] >= 0.62  # balanced test set: majority is 0.50
    proba = est.predict_proba(["a moving, beautifully acted film", "a tedious, clumsy mess"])
    fresh = list(est.classes_).index("fresh")
    assert proba[0, fresh] > proba[1, fresh]


def test_scratch_efficientnet_is_a_random_copy_of_the_pretrained_one():
    a = headstart.build_backbone("efficientnet_lite0")
    b = headstart.build_backbone("scratch:efficientnet_lite0")
    assert a.num_features == b.num_features
    assert not np.allclose(a.model.conv_stem.weight.detach().numpy(), b.model.conv_stem.weight.detach().numpy())


def test_rank_prefers_pretrained_lite0_to_its_random_copy_and_scores_its_imagenet_predictions(tmp_path):
    from headstart.data.sources import read_data
    from headstart.selection import rank_backbones
    data = read_data(EXAMPLES / "fashion_mnist" / "train")
    result = rank_backbones(data, ["scratch:efficientnet_lite0", "efficientnet_lite0"], cache_dir=tmp_path, log=None)
    assert result.pick == "efficientnet_lite0"
    lite = next(r for r in result.rows if r.backbone == "efficientnet_lite0")
    assert lite.scores["leep"] is not None and lite.scores["leep"] < 0  # from its 1000 ImageNet classes


def _rotten_tomatoes_examples(per_class: int) -> tuple[list[str], list[str]]:
    import csv

    with open(EXAMPLES / "rotten_tomatoes" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    picked = [r for c in ("fresh", "rotten") for r in [r for r in rows if r["label"] == c][:per_class]]
    return [r["text"] for r in picked], [r["label"] for r in picked]


def test_defaults_on_16_texts_tune_minilm_on_pairs_then_probe_the_last_half_of_its_layers(tmp_path):
    est = headstart.fit(*_rotten_tomatoes_examples(8), backbone="minilm", test_size=0.0, verbose=False,
                        runtime={"cache_dir": tmp_path})
    assert est.task_.name == "contrastive" and est.strategy_.max_steps == 10
    assert est.model_.backbone.pretrained_cfg.pooling == "mean_last_half"
    assert "rather than fitting the probe on the frozen encoder" in est.strategy_reason_
    assert "last half of the encoder's layers" in est.strategy_reason_


def test_defaults_under_16_texts_probe_the_last_half_of_frozen_minilm(tmp_path):
    est = headstart.fit(*_rotten_tomatoes_examples(6), backbone="minilm", test_size=0.0, verbose=False,
                        runtime={"cache_dir": tmp_path})
    assert est.strategy_.frozen_backbone and est.task_.name == "classification"
    assert est.model_.backbone.pretrained_cfg.pooling == "mean_last_half"
