"""Exact resume on the path users take (issue 18): the CLI on the real offline weights, killed
from outside with SIGKILL at an epoch boundary and mid-epoch, then ``--resume``; the bundle's
weights must equal, bit for bit, those of a run that was never interrupted. Image fine-tuning
(EfficientNet-Lite0: channels_last, fused AdamW, LP-FT probe head, the 20% hold-out taken when
no test set is given) and text fine-tuning (MiniLM, with an explicit test set)."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.real
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cli(*args):
    return [sys.executable, "-m", "headstart.cli", "fit", *map(str, args)]


def _latest(out: Path) -> str:
    p = out / "checkpoints" / "latest"
    return p.read_text().strip() if p.is_file() else ""


def _killed(cmd, out: Path, when) -> str:
    """Run ``cmd`` and SIGKILL it as soon as ``when(latest checkpoint name)`` holds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        name = _latest(out)
        if name and when(name):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill: {proc.stderr.read()[-2000:]}"
    return _latest(out)


def _resume(cmd, out: Path) -> str:
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout + r.stderr


def _same_weights(a: Path, b: Path) -> None:
    got, want = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"{len(different)} of {len(want)} tensors differ after resume, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def fmnist_subset(tmp_path_factory):
    """6 images per class of the shipped Fashion-MNIST examples: 48 train after the hold-out, 2 steps/epoch."""
    root = tmp_path_factory.mktemp("fm") / "train"
    for d in sorted((EXAMPLES / "fashion_mnist" / "train").iterdir()):
        (root / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:6]:
            shutil.copy(f, root / d.name / f.name)
    return root


@pytest.fixture(scope="module")
def image_reference(fmnist_subset, tmp_path_factory):
    base = tmp_path_factory.mktemp("img")
    cmd = lambda out: _cli(fmnist_subset, "--strategy", "fine_tuning", "--param", "epochs=4", "--image-size", 64,
                           "--seed", 3, "--checkpoint-every", 3, "--cache-dir", base / "cache", "--out", out)
    r = subprocess.run(cmd(base / "A"), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return cmd, base / "A"


@pytest.mark.parametrize("where", ["epoch_boundary", "mid_epoch"])
def test_image_fine_tuning_killed_and_resumed_through_the_cli_is_bitwise_equal(where, image_reference, tmp_path):
    cmd, reference = image_reference
    out = tmp_path / "B"
    boundary = where == "epoch_boundary"
    name = _killed(cmd(out), out, (lambda n: n.startswith("ckpt-0002-000000")) if boundary else
                   (lambda n: n.startswith("ckpt-0001-") and not n.endswith("-000000")))
    log = _resume(cmd(out), out)
    assert ("resumed from epoch 2" in log) if boundary else (f"resumed from epoch 1, step {int(name[-6:])}" in log)
    _same_weights(out, reference)


def test_text_fine_tuning_killed_mid_epoch_and_resumed_through_the_cli_is_bitwise_equal(tmp_path):
    rows = (EXAMPLES / "rotten_tomatoes" / "train.csv").read_text(encoding="utf-8").splitlines()
    train = tmp_path / "train.csv"
    train.write_text("\n".join(rows[:49]) + "\n", encoding="utf-8")  # 48 texts: 6 steps of 8 per epoch
    test = tmp_path / "test.csv"
    test.write_text("\n".join(rows[:1] + rows[150:190]) + "\n", encoding="utf-8")
    cmd = lambda out: _cli(train, "--test", test, "--backbone", "minilm",
                           "--strategy", "fine_tuning", "--param", "epochs=2", "--param", "batch_size=8",
                           "--param", "init_head=random", "--param", "lr=5e-5", "--checkpoint-every", 4,
                           "--cache-dir", tmp_path / "cache", "--out", out)
    r = subprocess.run(cmd(tmp_path / "A"), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    name = _killed(cmd(tmp_path / "B"), tmp_path / "B", lambda n: n.startswith("ckpt-0000-"))
    assert name
    _resume(cmd(tmp_path / "B"), tmp_path / "B")
    _same_weights(tmp_path / "B", tmp_path / "A")
