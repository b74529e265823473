import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from headstart import load
from headstart.cli import app

runner = CliRunner()


def _series_csv(path, n=30, steps=24, labels=True, seed=0):
    """Sines (class "sine") and noisy steps (class "step"), wide layout."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, steps)
    rows = [np.sin(t * rng.uniform(1, 3)) if i % 2 == 0 else (t > rng.uniform(2, 4)).astype(float)
            for i in range(n)]
    df = pd.DataFrame(np.stack(rows) + rng.normal(0, 0.05, (n, steps)), columns=[f"t{i}" for i in range(steps)])
    if labels:
        df.insert(0, "label", ["sine" if i % 2 == 0 else "step" for i in range(n)])
    df.to_csv(path, index=False)
    return path


def test_fit_predict_and_reload_a_time_series_csv_through_the_cli(tmp_path):
    data, new = _series_csv(tmp_path / "series.csv"), _series_csv(tmp_path / "new.csv", 6, labels=False, seed=1)
    out = tmp_path / "m"
    r = runner.invoke(app, ["fit", str(data), "--backbone", "ts:fcn_tiny", "--out", str(out), "-p", "steps=40"])
    assert r.exit_code == 0, r.output
    assert "time series: " in r.output and "1 channel, 24 steps" in r.output
    assert (out / "model.safetensors").is_file()
    r = runner.invoke(app, ["predict", str(out), str(new), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 6 and {row["label"] for row in rows} <= {"sine", "step"}
    r = runner.invoke(app, ["predict", str(out), str(new), "--out", str(tmp_path / "p.csv"), "--quiet"])
    assert r.exit_code == 0, r.output
    streamed = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert streamed["label"].tolist() == [row["label"] for row in rows] and not streamed["error"].any()
    est = load(out)
    assert est.modality_ == "timeseries"
    proba = est.predict_proba(str(new))
    assert np.allclose([[row["probabilities"][c] for c in est.classes_] for row in rows], proba, atol=1e-5)
