import numpy as np
import pytest
import torch

from headstart.backbones import CATALOG, build_backbone
from headstart.backbones.rocket import draw_kernels
from headstart.backbones.ts_pretrain import RECIPE, SOURCE_SETS, TARGETS, pretrain, source_series


def _batch(x, lengths=None):
    return {"series": x, "lengths": torch.tensor(lengths or [x.shape[-1]] * len(x))}


def test_fcn_gives_one_feature_row_per_series():
    bb = build_backbone("ts:fcn_tiny").eval()
    out = bb(_batch(torch.randn(3, 1, 50)))
    assert out.shape == (3, bb.num_features) == (3, 8 + 16 + 16)


@pytest.mark.parametrize("spec", ["ts:fcn_tiny", "rocket:40"])
def test_a_padded_series_gets_the_features_it_gets_alone(spec):
    bb = build_backbone(spec).eval()
    bb.adapt_to([np.zeros((1, 30), np.float32)])
    short = torch.randn(1, 1, 21)
    padded = torch.cat([short, torch.zeros(1, 1, 9)], -1)
    with torch.no_grad():
        alone, inside = bb(_batch(short)), bb(_batch(torch.cat([padded, torch.randn(1, 1, 30)]), [21, 30]))
    torch.testing.assert_close(inside[:1], alone)


def test_features_ignore_offset_and_scale_of_a_series():
    bb = build_backbone("ts:fcn_tiny").eval()
    x = torch.randn(2, 1, 40)
    torch.testing.assert_close(bb(_batch(x)), bb(_batch(3 * x + 7)), atol=1e-4, rtol=1e-4)


def test_several_channels_of_one_series_give_that_series_features():
    bb = build_backbone("ts:fcn_tiny").eval()
    x = torch.randn(2, 1, 40)
    one = bb(_batch(x))
    bb.adapt_to([np.zeros((3, 40), np.float32)])
    assert bb.pretrained_cfg.channels == 3
    torch.testing.assert_close(bb(_batch(x.repeat(1, 3, 1))), one, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="reads 3 channel"):
        bb(_batch(x))


def test_rocket_kernels_are_a_function_of_seed_length_and_channels():
    a, b = draw_kernels(30, 2, 100, 0), draw_kernels(30, 2, 100, 0)
    assert all(np.array_equal(x[3], y[3]) for x, y in zip(a, b))
    assert sum(len(g[4]) for g in a) == 30
    assert max(g[1] for g in a) * 10 <= 100 and max(g[1] for g in draw_kernels(30, 2, 1000, 0)) > 10
    other = draw_kernels(30, 2, 100, 1)
    assert not all(len(x[3]) == len(y[3]) and np.array_equal(x[3], y[3]) for x, y in zip(a, other))


def test_rocket_gives_ppv_and_max_per_kernel():
    bb = build_backbone("rocket:25")
    bb.adapt_to([np.zeros((1, 60), np.float32)])
    f = bb(_batch(torch.randn(4, 1, 60)))
    assert f.shape == (4, 50) and bool(((f[:, :25] >= 0) & (f[:, :25] <= 1)).all())


def test_ts_fcn_is_a_catalog_alias_and_its_sources_exclude_the_targets():
    assert CATALOG["ts_fcn"].spec == "ts:fcn" and CATALOG["ts_fcn"].modality == "timeseries"
    assert not set(SOURCE_SETS) & set(TARGETS) and tuple(RECIPE["sources"]) == SOURCE_SETS
    with pytest.raises(ValueError, match="benchmark targets"):
        source_series(("ItalyPowerDemand", "GunPoint"))


def test_pretraining_trains_a_head_per_source_and_returns_the_body():
    rng = np.random.default_rng(0)
    data = [([rng.normal(size=(1, n)).astype(np.float32) for n in (20, 30, 40, 25)], np.array([0, 1, 0, 1])),
            ([rng.normal(size=(1, 15)).astype(np.float32) for _ in range(3)], np.array([0, 1, 2]))]
    recipe = {**RECIPE, "arch": "fcn_tiny", "steps": 3, "batch_size": 4, "crop": 16}
    torch.manual_seed(0)
    before = build_backbone("ts:fcn_tiny").state_dict()
    body = pretrain(recipe, data)
    assert not body.training and body.num_features == 40
    assert any(not torch.equal(before[k], v) for k, v in body.state_dict().items() if k.endswith("weight"))
