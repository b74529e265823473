import json

import pytest
import safetensors.torch
import torch

from headstart.api import Headstart
from headstart.training.checkpoint import load_latest, save_checkpoint
from headstart.training.rng import restore_rng


def _parts():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    return model, opt, sched


def _step(model, opt):
    opt.zero_grad()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()


def _save(root, epoch, model, opt, sched, step=0, **kw):
    return save_checkpoint(root, epoch=epoch, step=step, model=model, optimizer=opt, scheduler=sched, **kw)


def test_roundtrip_restores_model_optimizer_and_scheduler(tmp_path):
    model, opt, sched = _parts()
    _step(model, opt)
    sched.step()
    _save(tmp_path, 1, model, opt, sched, step=3, extra={"strategy": "x"})
    ck = load_latest(tmp_path)
    model2, opt2, sched2 = _parts()
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert (ck["epoch"], ck["step"], ck["extra"]["strategy"]) == (1, 3, "x")
    torch.manual_seed(0)
    _step(model, opt)
    torch.manual_seed(0)
    _step(model2, opt2)
    assert torch.equal(model.weight, model2.weight) and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_rng_state_is_stored_without_pickle_and_restores_the_stream(tmp_path):
    model, opt, sched = _parts()
    torch.manual_seed(123)
    _save(tmp_path, 1, model, opt, sched)
    want = torch.rand(5)
    torch.manual_seed(999)
    restore_rng(*load_latest(tmp_path)["rng"])
    assert torch.equal(torch.rand(5), want)
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))


def test_latest_points_at_the_newest_and_old_ones_are_pruned(tmp_path):
    model, opt, sched = _parts()
    for e in range(1, 5):
        _save(tmp_path, e, model, opt, sched)
    assert (tmp_path / "latest").read_text() == "ckpt-0004-000000"
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-0003-000000", "ckpt-0004-000000"]


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    model, opt, sched = _parts()
    path = _save(tmp_path, 1, model, opt, sched)
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest) == {p.name for p in path.iterdir()} - {"manifest.json"}


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_valid_one(tmp_path):
    model, opt, sched = _parts()
    _save(tmp_path, 1, model, opt, sched)
    newest = _save(tmp_path, 2, model, opt, sched)
    f = newest / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="model.safetensors: SHA-256 does not match"):
        ck = load_latest(tmp_path)
    assert ck["epoch"] == 1


def test_a_write_that_dies_midway_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    model, opt, sched = _parts()
    _save(tmp_path, 1, model, opt, sched)
    calls = []

    def dies_on_second_file(tensors, path, *a, **k):  # the process "dies" after one file
        calls.append(path)
        if len(calls) == 2:
            raise SystemExit("killed")
        return real(tensors, path, *a, **k)

    real = safetensors.torch.save_file
    monkeypatch.setattr("headstart.training.checkpoint.save_file", dies_on_second_file)
    with pytest.raises(SystemExit):
        _save(tmp_path, 2, model, opt, sched)
    assert list(tmp_path.glob(".ckpt-0002-*.tmp"))  # the half-written one is there...
    assert load_latest(tmp_path)["epoch"] == 1  # ...and ignored


def test_non_finite_weights_are_never_written(tmp_path):
    model, opt, sched = _parts()
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite values in weight"):
        _save(tmp_path, 1, model, opt, sched)
    assert load_latest(tmp_path) is None


def test_fit_writes_a_checkpoint_per_epoch_and_resume_continues(tmp_path, image_data, capsys):
    kw = dict(backbone="tiny:cnn", strategy="fine_tuning", strategy_params={"epochs": 3})
    first = Headstart(verbose=False, run={"out": tmp_path / "m"}, **kw).fit(image_data[0], test=image_data[1])
    assert load_latest(tmp_path / "m" / "checkpoints")["epoch"] == 3
    again = Headstart(**kw, run={"out": tmp_path / "m", "resume": True}).fit(image_data[0], test=image_data[1])
    assert "resumed from epoch 3" in capsys.readouterr().out
    for a, b in zip(first.model_.state_dict().values(), again.model_.state_dict().values()):
        assert torch.equal(a, b)


def test_sigkill_at_a_random_moment_of_repeated_writes_leaves_a_loadable_checkpoint(tmp_path):
    """A real kill -9 while a process writes checkpoints back to back (most kills land mid-write)."""
    import random
    import subprocess
    import sys
    import time

    code = (
        "import sys, torch\n"
        "from headstart.training.checkpoint import save_checkpoint\n"
        "m = torch.nn.Linear(1000, 1000); o = torch.optim.AdamW(m.parameters())\n"
        "s = torch.optim.lr_scheduler.StepLR(o, 1)\n"
        "m(torch.randn(2, 1000)).sum().backward(); o.step()\n"
        "e = 0\n"
        "while True:\n"
        "    e += 1; save_checkpoint(sys.argv[1], epoch=e, model=m, optimizer=o, scheduler=s)\n"
        "    print(e, flush=True)\n")
    for trial in range(3):
        root = tmp_path / f"t{trial}"
        proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "1"  # one checkpoint is complete
        time.sleep(random.Random(trial).uniform(0.05, 0.6))
        proc.kill()
        proc.wait()
        ck = load_latest(root)
        assert ck is not None and ck["epoch"] >= 1 and ck["model"]["weight"].shape == (1000, 1000)
