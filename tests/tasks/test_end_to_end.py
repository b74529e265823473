"""Multi-label, regression and multitask through ``fit``, ``evaluate``, the bundle and the CLI,
on generated CSVs (TF-IDF backbone: real, offline, seconds) and colour images (tiny CNN)."""
import csv
import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart import Headstart, load
from headstart.cli import app
from tests.conftest import REVIEW_FILLER, REVIEW_WORDS, write_image_folder

WORDS, FILLER = REVIEW_WORDS, REVIEW_FILLER


def write_tagged_csv(path, n, seed):
    """text, tags (multi-label: a subset of fun/sad/long), rating (number), kind (class)."""
    rnd = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "tags", "rating", "kind"])
        for i in range(n):
            tags = [t for t in WORDS if rnd.random() < 0.45] or [rnd.choice(list(WORDS))]
            words = [rnd.choice(FILLER) for _ in range(6)] + [rnd.choice(WORDS[t]) for t in tags for _ in range(2)]
            rnd.shuffle(words)
            rating = 2.0 * ("fun" in tags) - 1.5 * ("sad" in tags) + 0.5 * ("long" in tags) + rnd.gauss(0, 0.2)
            w.writerow([" ".join(words), "|".join(tags), f"{rating:.3f}", "long" if "long" in tags else "short"])
    return path


@pytest.fixture
def tagged(tmp_path):
    return write_tagged_csv(tmp_path / "train.csv", 120, 0), write_tagged_csv(tmp_path / "test.csv", 60, 1)


def _quick(**kw):
    return Headstart(backbone="tfidf:1-2", strategy="feature_extraction", verbose=False,
                     runtime={"cache_dir": False}, **kw)


def test_multilabel_beats_the_label_frequency_prior_and_reloads_exactly(tagged, tmp_path):
    train, test = tagged
    est = _quick(task="multilabel", data={"label_column": "tags"}).fit(train, test=test)
    m = est.metrics_["test"]
    # the label-frequency prior predicts every label of training frequency >= 50%, for every example
    y = est.task_.encode(est.splits_["test"].labels, est.splits_["test"].origins)
    freq = est.task_.encode(est.splits_["train"].labels, est.splits_["train"].origins).mean(0)
    prior_micro = 2 * (y * (freq >= 0.5)).sum() / (y.sum() + (freq >= 0.5).sum() * len(y))
    assert m["micro_f1"] > prior_micro + 0.2 and m["map"] > 0.9, (m["micro_f1"], prior_micro, m["map"])
    pred = est.predict(["a hilarious and witty film", "tragic grim tearful story"])
    assert "fun" in pred[0] and "sad" in pred[1] and isinstance(pred[0], tuple)
    est.save(tmp_path / "b")
    again = load(tmp_path / "b")
    assert list(again.predict(test)) == list(est.predict(test))
    assert again.evaluate(test, None)["micro_f1"] == m["micro_f1"]


def test_regression_is_ridge_on_cached_features_with_mae_rmse_r2(tagged, tmp_path):
    train, test = tagged
    est = _quick(task="regression", data={"label_column": "rating"}).fit(train, test=test)
    m = est.metrics_["test"]
    y = np.array([float(v) for v in est.splits_["test"].labels])
    mean_mae = float(np.abs(y - np.mean([float(v) for v in est.splits_["train"].labels])).mean())
    assert m["r2"] > 0.8 and m["mae"] < 0.5 * mean_mae, m
    assert "ridge_alpha" in est.history_[0]
    est.save(tmp_path / "b")
    assert np.allclose(load(tmp_path / "b").predict(test), est.predict(test), atol=0, rtol=0)


def test_regression_detected_from_a_numeric_column_and_said_aloud(tagged, capsys):
    train, test = tagged
    est = Headstart(backbone="tfidf:1-2", strategy="feature_extraction", data={"label_column": "rating"},
                    runtime={"cache_dir": False}).fit(train, test=test)
    assert est.task_.name == "regression"
    assert "regression; pass --task classification to override" in capsys.readouterr().out


def test_multitask_one_backbone_two_targets_one_table_each(tagged, tmp_path):
    train, test = tagged
    est = _quick(task="classification,regression", data={"label_column": "kind,rating"}).fit(train, test=test)
    per = est.metrics_["test"]["targets"]
    assert set(per) == {"kind", "rating"}
    assert per["kind"]["accuracy"] > 0.9 and per["rating"]["r2"] > 0.5, per
    pred = est.predict(["an epic sprawling film"])[0]
    assert pred[0] == "long" and isinstance(float(pred[1]), float)
    est.save(tmp_path / "b")
    assert list(load(tmp_path / "b").predict(test)) == list(est.predict(test))


def test_image_regression_fine_tuned_through_the_trainer(tmp_path):
    root = write_image_folder(tmp_path / "img", 10)
    paths = sorted(root.rglob("*.png"))
    from PIL import Image
    red = [float(np.asarray(Image.open(p))[..., 0].mean()) for p in paths]
    est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", task="regression", verbose=False, test_size=0.25,
                    strategy_params={"epochs": 8, "init_head": "probe"}, runtime={"cache_dir": False})
    est.fit([str(p) for p in paths], red)
    m = est.metrics_["test"]
    assert m["mae"] < np.std(red) and np.isfinite(m["rmse"])
    assert len(est.history_) == 8


def test_cli_multilabel_fit_predict_and_eval(tagged, tmp_path):
    train, test = tagged
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["fit", str(train), "--test", str(test), "--backbone", "tfidf:1-2", "--task",
                                 "multilabel", "--label-column", "tags", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["predict", str(out), "a witty funny epic film", "--format", "json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    assert set(row["labels"]) >= {"fun", "long"} and 0 <= row["probabilities"]["fun"] <= 1  # the HTTP API's records
    r = CliRunner().invoke(app, ["eval", str(out), str(test), "--label-column", "tags"])
    assert r.exit_code == 0 and "micro-F1" in r.output, r.output
    assert "Per-label metrics" in (out / "report.html").read_text()


def test_cli_regression_with_a_bad_row_skips_it_and_names_it(tagged, tmp_path):
    train, test = tagged
    lines = train.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",n/a," + lines[3].rsplit(",", 1)[1]
    train.write_text("\n".join(lines) + "\n")
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["fit", str(train), "--test", str(test), "--backbone", "tfidf:1-2", "--task",
                                 "regression", "--label-column", "rating", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{train}:4: target 'n/a' is not a number" in r.output
    html = (out / "report.html").read_text()
    assert "Predicted against true" in html and "Residuals" in html
    r = CliRunner().invoke(app, ["predict", str(out), "hilarious witty", "--format", "json"])
    assert r.exit_code == 0 and "value" in json.loads(r.output)[0], r.output
