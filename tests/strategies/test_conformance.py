"""Every registered strategy fits, trains what it says, and predicts (generated from the registry)."""
import numpy as np
import pytest
import torch

from headstart.api import Headstart
from headstart.strategies import STRATEGIES

QUICK = {"feature_extraction": {"steps": 300, "lr": 1e-2}, "fine_tuning": {"steps": 12},
         "gradual_unfreezing": {"steps": 12, "epochs_per_group": 1}, "lora": {"steps": 12, "lr": 1e-2},
         "auto": {"steps": 300, "lr": 1e-2}}


def test_every_strategy_has_a_quick_setting():
    assert set(STRATEGIES.list()) | {"auto"} == set(QUICK)


@pytest.mark.parametrize("name", STRATEGIES.list() + ["auto"])
def test_strategy_fits_and_predicts(name, image_data):
    est = Headstart(backbone="tiny:cnn", strategy=name, head="mlp", head_params={"hidden": [16]},
                    strategy_params=QUICK[name] or None, verbose=False)
    est.fit(image_data[0], test=image_data[1])
    proba = est.predict_proba(image_data[1])
    assert proba.shape == (18, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert est.metrics_["test"]["accuracy"] > 1 / 3  # the colours are easy: better than chance


def test_feature_extraction_leaves_the_backbone_untouched(image_data):
    torch.manual_seed(0)
    est = Headstart(backbone="tiny:cnn", strategy="feature_extraction", seed=0, verbose=False)
    est.fit(image_data[0], test=image_data[1])
    from headstart.backbones import build_backbone
    torch.manual_seed(0)
    ref = build_backbone("tiny:cnn")
    for a, b in zip(ref.state_dict().values(), est.model_.backbone.state_dict().values()):
        assert torch.equal(a, b)


def test_fine_tuning_freeze_first_groups_keeps_them_fixed(image_data):
    torch.manual_seed(0)
    from headstart.backbones import build_backbone
    ref = build_backbone("tiny:cnn")
    est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", seed=0, verbose=False,
                    strategy_params={"freeze": "first:2", "steps": 10, "batchnorm": "train"})
    est.fit(image_data[0], test=image_data[1])
    got = est.model_.backbone
    assert all(torch.equal(a, b) for a, b in zip(ref.blocks[:2].state_dict().values(),
                                                 got.blocks[:2].state_dict().values()))
    assert not torch.equal(ref.blocks[2][0].weight, got.blocks[2][0].weight)
