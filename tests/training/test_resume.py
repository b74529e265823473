"""Kill -9 a fine-tuning run at a chosen step, resume it, and compare with an uninterrupted
run: the final weights must be bitwise equal (CPU; dataloader workers 0 and 2)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import write_image_folder

CHILD = Path(__file__).with_name("resume_child.py")
# 42 images -> 33 for training after the default 20% test split -> 5 steps per epoch, 3 epochs.
KILLS = {"epoch_boundary": (6, 0),  # no step checkpoints: resumes from the end of epoch 1
         "mid_epoch": (8, 3)}  # step checkpoints every 3: resumes at epoch 2, step 1


def _run(data, out, kill_at, every, workers, resume, result, task="classification", strategy="fine_tuning"):
    return subprocess.run([sys.executable, str(CHILD), str(data), str(out), str(kill_at), str(every),
                           str(workers), "1" if resume else "0", str(result), task, strategy],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("resume") / "data", 14)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    done = {}

    def get(workers):
        if workers not in done:
            d = tmp_path_factory.mktemp(f"full{workers}")
            p = _run(data, d / "out", 0, 0, workers, False, d / "w.safetensors")
            assert p.returncode == 0, p.stderr[-3000:]
            done[workers] = load_file(str(d / "w.safetensors"))
        return done[workers]
    return get


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kill", sorted(KILLS))
def test_killed_and_resumed_run_is_bitwise_equal_to_an_uninterrupted_one(kill, workers, data, uninterrupted,
                                                                         tmp_path):
    kill_at, every = KILLS[kill]
    out, result = tmp_path / "out", tmp_path / "w.safetensors"
    killed = _run(data, out, kill_at, every, workers, False, result)
    assert killed.returncode == -9 and not result.exists(), killed.stderr[-3000:]
    resumed = _run(data, out, 0, every, workers, True, result)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, want = load_file(str(result)), uninterrupted(workers)
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"weights differ after resume: {different[:5]}"


def _killed_and_resumed_vs_uninterrupted(data, tmp_path, **kw):
    """(weights after a mid-epoch kill and a resume, weights of an uninterrupted run)."""
    kill_at, every = KILLS["mid_epoch"]
    want = tmp_path / "want.safetensors"
    full = _run(data, tmp_path / "full", 0, 0, 0, False, want, **kw)
    assert full.returncode == 0, full.stderr[-3000:]
    out, result = tmp_path / "out", tmp_path / "w.safetensors"
    assert _run(data, out, kill_at, every, 0, False, result, **kw).returncode == -9
    resumed = _run(data, out, 0, every, 0, True, result, **kw)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return load_file(str(result)), load_file(str(want))


def test_killed_and_resumed_adaptation_run_is_bitwise_equal(data, tmp_path):
    """CDAN (DANN's discriminator and reversal, conditioned on the predictions): a second
    (unlabeled) stream and modules of the task's own, killed mid-epoch."""
    got, ref = _killed_and_resumed_vs_uninterrupted(data, tmp_path, task="cdan")
    assert any(k.startswith("task_modules.discriminator") for k in ref)
    different = [k for k in ref if not torch.equal(got[k], ref[k])]
    assert got.keys() == ref.keys() and not different, f"weights differ after resume: {different[:5]}"


def test_killed_and_resumed_contrastive_run_is_bitwise_equal(data, tmp_path):
    """Contrastive: the body tuned on pairs, killed mid-epoch, resumed; the head fitted after."""
    got, ref = _killed_and_resumed_vs_uninterrupted(data, tmp_path, task="contrastive")
    different = [k for k in ref if not torch.equal(got[k], ref[k])]
    assert got.keys() == ref.keys() and not different, f"weights differ after resume: {different[:5]}"


def test_killed_and_resumed_lora_run_is_bitwise_equal(data, tmp_path):
    """LoRA (PEFT adapters with dropout on tiny:cnn's convolutions), killed mid-epoch: the
    adapter, the head and the frozen base come out exactly as in an uninterrupted run."""
    got, ref = _killed_and_resumed_vs_uninterrupted(data, tmp_path, strategy="lora")
    assert any("lora_B" in k for k in ref)
    different = [k for k in ref if not torch.equal(got[k], ref[k])]
    assert got.keys() == ref.keys() and not different, f"weights differ after resume: {different[:5]}"
