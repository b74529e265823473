import os
import signal

import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset

from headstart.tasks.classification import ClassificationTask
from headstart.training.checkpoint import load_latest
from headstart.training.loop import TrainingInterrupted, split_batch, train_epochs


def _setup(seed=0, n=32, batch=16):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(n, 6), torch.arange(n) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return model, loader, opt, sched


def _train(model, loader, opt, sched, task, **kw):
    return train_epochs(Accelerator(cpu=True), model, loader, opt, sched, task, epochs=kw.pop("epochs", 2),
                        progress=False, log=kw.pop("log", lambda m: None), **kw)


class OOMAbove:
    """A task that fails like CUDA does when a batch has more than ``limit`` rows."""

    def __init__(self, limit):
        self.limit, self.task, self.sizes = limit, ClassificationTask(), []

    def __call__(self, model, batch):
        self.sizes.append(len(batch[1]))
        if len(batch[1]) > self.limit:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return self.task(model, batch)


def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch():
    ref = _setup()
    _train(*ref, ClassificationTask())
    model, loader, opt, sched = _setup()
    task, logs = OOMAbove(4), []
    hist = _train(model, loader, opt, sched, task, log=logs.append)
    assert hist[-1]["micro_batches"] == 4 and max(s for s in task.sizes[-8:]) == 4
    assert any("out of memory: retrying in 2 micro-batches" in m for m in logs)
    for a, b in zip(model.parameters(), ref[0].parameters()):  # same updates as full batches
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_out_of_memory_at_batch_one_is_raised():
    with pytest.raises(torch.OutOfMemoryError):
        _train(*_setup(), OOMAbove(0))


def test_split_batch_covers_every_row_once():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    parts = split_batch(({"ids": x}, y), 4)
    assert torch.equal(torch.cat([p[1] for p in parts]), y) and len(parts) == 4


class NaNOn:
    def __init__(self, bad_calls):
        self.bad, self.calls, self.task = set(bad_calls), 0, ClassificationTask()

    def __call__(self, model, batch):
        self.calls += 1
        out = self.task(model, batch)
        return {**out, "loss": out["loss"] * float("nan")} if self.calls in self.bad else out


def test_nan_steps_are_skipped_and_weights_stay_finite():
    model, loader, opt, sched = _setup()
    before = [p.detach().clone() for p in model.parameters()]
    _train(model, loader, opt, sched, NaNOn({1, 3}), epochs=2)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_consecutive_nan_steps_stop_with_a_clear_error(tmp_path):
    model, loader, opt, sched = _setup(n=160)
    with pytest.raises(FloatingPointError, match="NaN/inf for 5 consecutive steps"):
        _train(model, loader, opt, sched, NaNOn(range(3, 100)), checkpoint_dir=tmp_path)
    assert load_latest(tmp_path) is None  # nothing from that epoch was written


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    model, loader, opt, sched = _setup(n=64)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (not under nohup)

    def interrupt(info):
        if info["global_step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="--resume") as e:
        _train(model, loader, opt, sched, ClassificationTask(), checkpoint_dir=tmp_path, on_step=interrupt,
               epochs=3)
    ck = load_latest(tmp_path)
    assert e.value.checkpoint == ck["path"] and (ck["epoch"], ck["step"]) == (0, 3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    signal.signal(signal.SIGINT, before)
