"""``headstart compare`` end to end for regression and multi-label targets, through the CLI, on
generated CSVs whose targets the words decide (TF-IDF backbone: real, offline, seconds)."""
import csv
import json
import random
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from headstart.cli import app
from tests.conftest import REVIEW_FILLER, REVIEW_WORDS

runner = CliRunner()
WORDS, FILLER = REVIEW_WORDS, REVIEW_FILLER


def write_reviews(path, n, seed):
    """text, tags (a subset of fun/sad/long, "|"-separated), score (a number the tag words set)."""
    rnd = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "tags", "score"])
        for _ in range(n):
            tags = [t for t in WORDS if rnd.random() < 0.45] or [rnd.choice(list(WORDS))]
            words = [rnd.choice(FILLER) for _ in range(5)] + [rnd.choice(WORDS[t]) for t in tags for _ in range(2)]
            rnd.shuffle(words)
            score = 3.0 * ("fun" in tags) - 2.0 * ("sad" in tags) + 1.0 * ("long" in tags) + rnd.gauss(0, 0.2)
            w.writerow([" ".join(words), "|".join(tags), f"{score:.3f}"])
    return path


def _compare(tmp, column, methods, *extra):
    train, test = write_reviews(tmp / "train.csv", 60, 0), write_reviews(tmp / "test.csv", 30, 1)
    out = tmp / "out"
    r = runner.invoke(app, ["compare", str(train), "--test", str(test), "--label-column", column,
                            "--backbone", "tfidf:1-2", "--methods", methods, "--seeds", "1",
                            "--cache-dir", str(tmp / "cache"), "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    return r.output, json.loads((out / "metrics.json").read_text()), (out / "report.html").read_text(), out


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return _compare(tmp_path_factory.mktemp("cmp-reg"), "score", "mean,classic,linear_probe,prototype")


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory):
    return _compare(tmp_path_factory.mktemp("cmp-ml"), "tags", "prior,classic,linear_probe", "--task", "multilabel",
                    "--label-sep", "|")


def test_regression_is_detected_and_said_aloud(regression):
    assert "regression; pass --task classification to override" in regression[0]


def test_regression_table_names_mae_and_has_the_mean_baseline_row(regression):
    output, _, _, _ = regression
    assert "MAE (95% CI)" in output and "accuracy" not in output
    assert {"mean", "classic", "linear_probe"} <= {line.split()[0] for line in output.splitlines() if line.strip()}


def test_regression_skips_prototypes_with_a_note(regression):
    output, metrics, _, _ = regression
    assert "prototype     skipped: for classification only" in output and "prototype" not in metrics["methods"]


def test_predictable_target_ridge_on_tfidf_has_a_lower_mae_than_the_mean(regression):
    _, metrics, _, _ = regression
    mae = {r["method"]: r["mae"] for r in metrics["summary"]}
    assert metrics["metric"] == {"name": "MAE", "key": "mae", "higher_is_better": False}
    assert mae["classic"] < 0.7 * mae["mean"], mae  # 0.89 against 1.59 here


def test_regression_report_plots_predictions_and_mae_curves(regression):
    _, _, page, _ = regression
    assert "<th>MAE</th>" in page and "Predictions: linear_probe" in page
    assert page.count('class="plot"') == 4  # two learning curves, predicted-vs-true, residuals


def test_multilabel_table_names_micro_f1_and_has_the_prior_row(multilabel):
    output, metrics, _, _ = multilabel
    assert "micro-F1 % (95% CI)" in output and "mAP" in output
    assert [r["method"] for r in metrics["summary"]] == ["prior", "classic", "linear_probe"]


def test_multilabel_classic_beats_the_label_frequency_prior(multilabel):
    _, metrics, _, _ = multilabel
    f1 = {r["method"]: r["micro_f1"] for r in metrics["summary"]}
    assert f1["classic"] > f1["prior"] + 10, f1  # percent points


def test_multilabel_report_has_the_micro_f1_table_and_the_per_label_one(multilabel):
    _, _, page, _ = multilabel
    assert "<th>micro-F1 %</th>" in page and "Per-label metrics: linear_probe" in page


def test_regression_report_renders_every_plot_in_headless_chromium(regression, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    page = regression[3] / "report.html"
    res = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                          "--enable-logging=stderr", "--v=0", f"--screenshot={tmp_path / 'shot.png'}", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert re.search(r"headstart report: 4/4 plots rendered", res.stderr), res.stderr[-2000:]
