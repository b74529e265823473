"""Batch prediction into a CSV: the same numbers as predict, a row naming each unreadable file,
a resume after SIGKILL that writes exactly the uninterrupted run's file, and two processes
(torchrun) that write what one does."""
import csv
import json
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import headstart
from headstart.data.unlabeled import read_image_files
from headstart.inference import predict_to_csv
from tests.conftest import free_port, make_image, write_text_csv


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "inputs"
    d.mkdir()
    for i in range(30):
        make_image([(200, 30, 30), (30, 180, 40), (30, 40, 200)][i % 3], 500 + i).save(d / f"{i:03d}.png")
    return d


def test_rows_hold_predicts_probabilities_and_a_corrupt_file_is_one_error_row(tiny_bundles, folder, tmp_path):
    (folder / "015b.png").write_bytes(b"not a png")
    est = headstart.load(tiny_bundles["img"])
    data = read_image_files(folder)
    assert predict_to_csv(est, data, tmp_path / "p.csv", batch_size=8, num_workers=0, progress=False) == 31
    got = rows(tmp_path / "p.csv")
    bad = [r for r in got if r["error"]]
    assert len(got) == 31 and len(bad) == 1 and "015b.png" in bad[0]["error"] and "cannot read image" in bad[0]["error"]
    good = [r for r in got if not r["error"]]
    expected = est.predict_proba([f for f in data.items if f.name != "015b.png"])
    np.testing.assert_allclose([[float(r[f"p_{c}"]) for c in est.classes_] for r in good], expected, atol=1e-5)


def test_texts_from_a_csv_are_predicted_in_order(tiny_bundles, tmp_path):
    est = headstart.load(tiny_bundles["txt"])
    src = write_text_csv(tmp_path / "reviews.csv", 25, 3)
    data = headstart.data.unlabeled.read_unlabeled(src)
    predict_to_csv(est, data, tmp_path / "p.csv", batch_size=4, progress=False)
    assert [r["label"] for r in rows(tmp_path / "p.csv")] == est.predict(data.items).tolist()


def cli(*args):
    return [sys.executable, "-m", "headstart.cli", *map(str, args)]


def test_predict_killed_midway_then_resumed_writes_the_uninterrupted_file(tiny_bundles, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(1500):
        make_image([(200, 30, 30), (30, 180, 40), (30, 40, 200)][i % 3], i).save(d / f"{i:04d}.png")
    bundle = tiny_bundles["img"]
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    flags = ["--batch-size", "8", "--num-workers", "0", "--quiet"]
    assert subprocess.run(cli("predict", bundle, d, "--out", ref, *flags), capture_output=True).returncode == 0
    proc = subprocess.Popen(cli("predict", bundle, d, "--out", out, *flags), stderr=subprocess.PIPE)
    progress = tmp_path / "out.csv.progress"
    deadline = time.time() + 300
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text() or '{"rows": 0}')["rows"] >= 200:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(progress.read_text())["rows"]
    assert 200 <= done < 1500, done  # killed midway
    res = subprocess.run(cli("predict", bundle, d, "--out", out, "--resume", *flags), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"{1500 - done} predictions written" in res.stderr
    assert out.read_bytes() == ref.read_bytes() and not progress.exists()


def test_resume_refuses_other_inputs(tiny_bundles, folder, tmp_path):
    est = headstart.load(tiny_bundles["img"])
    data = read_image_files(folder)
    out = tmp_path / "p.csv"
    predict_to_csv(est, data.subset(range(10)), out, batch_size=4, progress=False)
    (tmp_path / "p.csv.progress").write_text(json.dumps({"rows": 4, "bytes": 200, "total": 30}))
    with pytest.raises(ValueError, match="not the same inputs|does not match"):
        predict_to_csv(est, data.subset(range(10, 30)).concat(data.subset(range(10))), out, resume=True,
                       progress=False)


def test_two_processes_under_torchrun_write_what_one_does(tiny_bundles, folder, tmp_path):
    bundle = tiny_bundles["img"]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert subprocess.run(cli("predict", bundle, folder, "--out", one, "--quiet"), capture_output=True).returncode == 0
    port = free_port()
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                          "127.0.0.1", "--master_port", str(port), "-m", "headstart.cli", "predict", str(bundle),
                          str(folder), "--out", str(two), "--quiet"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = rows(one), rows(two)
    assert [r["input"] for r in a] == [r["input"] for r in b] and [r["label"] for r in a] == [r["label"] for r in b]
    np.testing.assert_allclose([float(r["p_red"]) for r in a], [float(r["p_red"]) for r in b], atol=1e-5)
    assert sorted(p.name for p in tmp_path.glob("two.csv*")) == ["two.csv"]


def test_a_streamed_run_checks_its_inputs_and_writes_ood_scores(tiny_bundles, folder, tmp_path):
    from headstart.adaptation.reference import InputShiftWarning
    from tests.conftest import write_inverted

    est = headstart.load(tiny_bundles["img"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputShiftWarning)  # inputs like the training data: quiet
        predict_to_csv(est, read_image_files(folder), tmp_path / "p.csv", batch_size=8, progress=False, ood_score=True)
    assert not est.input_check_.shifted and est.input_check_.n == 30
    inside = np.array([float(r["ood_score"]) for r in rows(tmp_path / "p.csv")])
    with pytest.warns(InputShiftWarning, match="these 30 inputs differ"):
        predict_to_csv(est, read_image_files(write_inverted(folder, tmp_path / "inv")), tmp_path / "q.csv",
                       batch_size=8, progress=False, ood_score=True)
    got = rows(tmp_path / "q.csv")
    assert list(got[0])[-2:] == ["ood_score", "error"]
    assert np.median([float(r["ood_score"]) for r in got]) > 3 * np.median(inside)
