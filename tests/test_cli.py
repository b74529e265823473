import json

from typer.testing import CliRunner

from headstart.cli import app

runner = CliRunner()


def test_fit_eval_predict_roundtrip(tmp_path, image_data):
    out = tmp_path / "m"
    r = runner.invoke(app, ["fit", str(image_data[0]), "--test", str(image_data[1]), "--backbone", "tiny:cnn",
                            "--strategy", "fine_tuning", "-p", "steps=6", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (out / "model.safetensors").is_file()
    assert f"report: {out / 'report.html'}" in r.output and f"headstart serve {out}" in r.output
    assert f"headstart predict {out} FOLDER_OR_CSV --out predictions.csv" in r.output
    r = runner.invoke(app, ["eval", str(out), str(image_data[1]), "--json", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output and "accuracy" in r.output
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 18
    img = next((image_data[1] / "red").iterdir())
    r = runner.invoke(app, ["predict", str(out), str(img), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows[0]["label"] in ("red", "green", "blue")
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-5 and rows[0]["input"] == str(img)


def test_fit_compare_scratch_prints_both(tmp_path, text_data):
    r = runner.invoke(app, ["fit", str(text_data[0]), "--test", str(text_data[1]), "--backbone", "tiny:bert",
                            "--strategy", "fine_tuning", "-p", "steps=6", "--out", str(tmp_path / "m"),
                            "--compare-scratch", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "transfer: tiny:bert" in r.output and "scratch: tfidf:1-2" in r.output


def test_compare_refuses_multitask_targets_with_a_message(tmp_path, text_data):
    r = runner.invoke(app, ["compare", str(text_data[0]), "--task", "classification,regression",
                            "--out", str(tmp_path / "c")])
    assert r.exit_code == 1 and "compare covers classification, multilabel, regression targets, not multitask" in r.output


def test_predict_text_from_csv_writes_csv(tmp_path, text_data):
    out = tmp_path / "m"
    assert runner.invoke(app, ["fit", str(text_data[0]), "--backbone", "tiny:bert", "--strategy",
                               "feature_extraction", "--out", str(out), "--quiet"]).exit_code == 0
    r = runner.invoke(app, ["predict", str(out), str(text_data[1])])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("input,label,p_neg,p_pos") and len(lines) == 21


def test_backbones_lists_offline_availability():
    r = runner.invoke(app, ["backbones"])
    assert r.exit_code == 0 and "efficientnet_lite0" in r.output and "minilm" in r.output


def test_bad_data_path_fails_with_a_message(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path / "nope"), "--backbone", "tiny:cnn", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0
    assert "no such file or folder" in str(r.exception)


def test_sigterm_during_fit_checkpoints_exits_cleanly_and_resume_continues(tmp_path, image_data):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from headstart.training.checkpoint import load_latest

    exe = str(Path(sys.executable).with_name("headstart"))
    out = tmp_path / "m"
    cmd = [exe, "fit", str(image_data[0]), "--backbone", "tiny:cnn", "--strategy", "fine_tuning",
           "-p", "epochs=500", "-p", "init_head=random", "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "latest").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "training interrupted" in err and "--resume" in err
    done = load_latest(out / "checkpoints")
    assert done is not None and done["epoch"] >= 1
    resumed = subprocess.run(cmd[:7] + ["-p", f"epochs={done['epoch'] + 1}", "-p", "init_head=random",
                                        "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--resume"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from epoch {done['epoch']}" in resumed.stdout


def test_check_reports_bad_files_and_fail_policy_exits_1(tmp_path, image_data):
    (image_data[0] / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    ok = runner.invoke(app, ["check", str(image_data[0]), "--test", str(image_data[1])])
    assert ok.exit_code == 0 and "broken.png: cannot read image" in ok.output and "red" in ok.output
    bad = runner.invoke(app, ["check", str(image_data[0]), "--on-bad-sample", "fail"])
    assert bad.exit_code == 1 and "1 bad sample(s)" in bad.output


def test_fit_help_lists_the_registered_tasks_heads_and_strategies():
    r = runner.invoke(app, ["fit", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for name in ("multilabel", "regression", "prototype", "gradual_unfreezing"):
        assert name in text


def test_fit_adapts_to_an_unlabeled_target_folder(tmp_path):
    from tests.conftest import write_image_folder

    src, tgt = write_image_folder(tmp_path / "src", 6), write_image_folder(tmp_path / "tgt", 3, seed=1)
    r = runner.invoke(app, ["fit", str(src), "--backbone", "tiny:cnn", "--target-unlabeled", str(tgt),
                            "--adapt", "coral", "-p", "epochs=1", "-p", "init_head=random",
                            "--out", str(tmp_path / "m"), "--cache-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "m" / "headstart.json").read_text())
    assert meta["task"]["name"] == "coral"


def test_fit_adapt_without_a_target_is_refused(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path), "--adapt", "dann"])
    assert r.exit_code != 0 and "--target-unlabeled" in r.output


def test_fit_compare_scratch_on_a_regression_target_reports_the_task_metric(tmp_path):
    rng = __import__("random").Random(0)
    words = ["great", "fine", "bad", "awful", "superb", "dull"]
    value = {"great": 4.0, "fine": 3.0, "bad": 1.5, "awful": 0.5, "superb": 5.0, "dull": 2.0}
    for name, n in (("train", 40), ("test", 20)):
        rows = ["text,score"]
        for _ in range(n):
            w = rng.choice(words)
            rows.append(f"a {w} film of {rng.randint(1, 9)} acts,{value[w] + rng.random() * 0.2:.3f}")
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
                            "--label-column", "score", "--task", "regression", "--backbone", "tiny:bert",
                            "--strategy", "feature_extraction", "--out", str(tmp_path / "m"), "--compare-scratch",
                            "--quiet"])
    assert r.exit_code == 0, r.output
    assert "MAE" in r.output and "training from scratch: MAE" in r.output


def test_fit_with_a_target_test_prints_the_adaptation_summary(tmp_path):
    from tests.conftest import write_image_folder

    src, tgt = write_image_folder(tmp_path / "src", 6), write_image_folder(tmp_path / "tgt", 3, seed=1)
    tt = write_image_folder(tmp_path / "tt", 3, seed=2)
    r = runner.invoke(app, ["fit", str(src), "--backbone", "tiny:cnn", "--target-unlabeled", str(tgt),
                            "--adapt", "feature_align", "--target-test", str(tt), "--out", str(tmp_path / "m"),
                            "--cache-dir", str(tmp_path / "c"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "target test" in r.output and "shift before -> after" in r.output and "oracle pick" in r.output
    saved = json.loads((tmp_path / "m" / "adaptation.json").read_text())
    assert saved["sizes"]["target_test"] == 9 and saved["method"] == "feature_align"


def test_fit_target_test_without_adapt_is_refused(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path), "--target-test", str(tmp_path)])
    assert r.exit_code != 0 and "--target-test" in r.output


def test_predict_warns_on_shifted_inputs_and_adds_ood_scores(tmp_path, tiny_bundles):
    from tests.conftest import write_image_folder, write_inverted

    inverted = write_inverted(write_image_folder(tmp_path / "held", 12, 3), tmp_path / "inv")
    r = runner.invoke(app, ["predict", str(tiny_bundles["img"]), str(inverted), "--ood-score"])
    assert r.exit_code == 0, r.output
    assert "warning: these 36 inputs differ from the training data this model was fitted for" in r.stderr
    header = r.stdout.splitlines()[0].split(",")
    assert header[-1] == "ood_score" and "p_red" in header
    r = runner.invoke(app, ["predict", str(tiny_bundles["img"]), str(tmp_path / "held"), "--format", "json"])
    assert r.exit_code == 0 and "warning" not in r.output, r.output
