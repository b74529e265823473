import numpy as np
import pandas as pd

from headstart import Headstart, load
from headstart.data import read_data


def _series(n=24, seed=0):
    """Unequal-length sines (class 0) and ramps (class 1), as a 2-D list of 1-D arrays."""
    rng = np.random.default_rng(seed)
    xs = [np.sin(np.linspace(0, 6, 20 + i % 7)) if i % 2 == 0 else np.linspace(-1, 1, 20 + i % 7)
          for i in range(n)]
    return [x + rng.normal(0, 0.05, len(x)) for x in xs], [i % 2 for i in range(n)]


def test_the_time_series_feature_cache_serves_a_second_fit(tmp_path):
    x, y = _series()
    kw = dict(backbone="ts:fcn_tiny", strategy="feature_extraction", verbose=False,
              runtime={"cache_dir": str(tmp_path / "c")})
    data = read_data(x, y, modality="timeseries")
    Headstart(**kw).fit(data)
    again = Headstart(**kw).fit(data)
    assert again.cache_.computed == 0 and again.cache_.reused > 0


def test_a_2d_array_fits_and_a_long_csv_predicts_with_the_same_model(tmp_path):
    rng = np.random.default_rng(1)
    t = np.linspace(0, 6, 30)
    x = np.stack([np.sin(t) if i % 2 == 0 else np.cos(2 * t) for i in range(20)]) + rng.normal(0, 0.05, (20, 30))
    est = Headstart(backbone="ts:fcn_tiny", strategy_params={"steps": 30}, verbose=False,
                    runtime={"cache_dir": False}).fit(x, ["s", "c"] * 10)
    assert est.modality_ == "timeseries" and est.strategy_.name == "fine_tuning"  # auto, for time series
    rows = [dict(id=i, time=k, value=v) for i, s in enumerate(x[:4]) for k, v in enumerate(s)]
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    est.save(tmp_path / "b")
    again = load(tmp_path / "b")
    assert np.allclose(again.predict_proba(str(tmp_path / "long.csv")), est.predict_proba(x[:4]), atol=1e-5)


def test_a_multivariate_npz_fits_and_reloads_with_its_channel_count(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (16, 3, 25)).astype(np.float32)
    y = np.arange(16) % 2
    x[y == 1, 1] += np.linspace(0, 3, 25)  # class 1: a trend in channel 1
    np.savez(tmp_path / "d.npz", X=x, y=y)
    est = Headstart(backbone="ts:fcn_tiny", strategy="feature_extraction", verbose=False,
                    runtime={"cache_dir": False}).fit(str(tmp_path / "d.npz"))
    assert est.model_.backbone.pretrained_cfg.channels == 3
    est.save(tmp_path / "b")
    assert np.allclose(load(tmp_path / "b").predict_proba(x), est.predict_proba(x), atol=1e-5)
