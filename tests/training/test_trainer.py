"""The one trainer's guarantees on a small head over feature rows: OOM micro-batching, NaN
guards, SIGINT checkpoints (the kill-and-resume tests are in test_resume.py)."""
import os
import signal

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from headstart.data.loaders import FeatureBatches, feature_loader
from headstart.heads import build_head
from headstart.model import HeadModel
from headstart.strategies import FeatureExtraction, RunSettings
from headstart.tasks import ClassificationTask
from headstart.training.checkpoint import load_latest
from headstart.training.context import FitContext
from headstart.training.loop import TrainingInterrupted, split_batch
from headstart.training.trainer import SMALL_STEP, Trainer, few_threads


def _setup(seed=0, n=32):
    torch.manual_seed(seed)
    model = HeadModel(build_head("mlp", 6, 3, hidden=[8], dropout=0.0))
    x, y = torch.randn(n, 6), np.arange(n) % 3
    task = ClassificationTask(label_smoothing=0.0).fit_targets(list(range(3)))
    return model, x, y, task


def _train(model, x, y, task, epochs=2, log=lambda m: None, rows=feature_loader, **ctx_kw):
    ctx = FitContext(Accelerator(cpu=True), log=log, **ctx_kw)
    settings = RunSettings(epochs=epochs, batch_size=16, warmup=0.0, grad_clip=None, desc="test")
    loader = rows(x, y, batch_size=16)
    return Trainer(ctx).run(model, task, loader, FeatureExtraction(lr=0.05), settings, 0, lambda core: None,
                            None, None)


class OOMAbove(ClassificationTask):
    """A task that fails like CUDA does when a batch has more than ``limit`` rows."""

    def __init__(self, limit):
        super().__init__(label_smoothing=0.0)
        self.limit, self.sizes = limit, []

    def loss(self, output, batch, progress):
        self.sizes.append(len(batch["targets"]))
        if len(batch["targets"]) > self.limit:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return super().loss(output, batch, progress)


@pytest.mark.parametrize("rows", [feature_loader, FeatureBatches])
def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(rows):
    ref = _setup()
    _train(*ref)
    model, x, y, _ = _setup()
    task, logs = OOMAbove(4).fit_targets(list(range(3))), []
    hist = _train(model, x, y, task, log=logs.append, rows=rows)
    assert hist[-1]["micro_batches"] == 4 and max(task.sizes[-8:]) == 4
    assert any("out of memory: retrying in 2 micro-batches" in m for m in logs)
    for a, b in zip(model.parameters(), ref[0].parameters()):  # same updates as full batches
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_out_of_memory_at_batch_one_is_raised():
    model, x, y, _ = _setup()
    with pytest.raises(torch.OutOfMemoryError):
        _train(model, x, y, OOMAbove(0).fit_targets(list(range(3))))


def test_in_memory_batches_train_the_head_exactly_as_the_loader_does():
    # one process: no DataLoader and no Accelerate optimizer wrapper, the same weights bit for bit
    ref, (model, x, y, task) = _setup(n=40), _setup(n=40)
    hist_ref = _train(*ref, epochs=3)
    hist = _train(model, x, y, task, epochs=3, rows=FeatureBatches)
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in hist_ref]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref[0].parameters()))


def test_small_steps_on_cpu_run_on_one_thread_and_the_count_comes_back():
    start = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with few_threads(torch.device("cpu"), SMALL_STEP):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with few_threads(torch.device("cpu"), SMALL_STEP + 1):  # a large step keeps every thread
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), few_threads(torch.device("cpu"), 10):
            raise RuntimeError("a failed run")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(start)


def test_split_batch_covers_every_row_once():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    parts = split_batch({"inputs": {"ids": x}, "targets": y}, 4)
    assert torch.equal(torch.cat([p["targets"] for p in parts]), y) and len(parts) == 4
    assert torch.equal(torch.cat([p["inputs"]["ids"] for p in parts]), x)


class NaNOn(ClassificationTask):
    def __init__(self, bad_calls):
        super().__init__()
        self.bad, self.calls = set(bad_calls), 0

    def loss(self, output, batch, progress):
        self.calls += 1
        out = super().loss(output, batch, progress)
        return {**out, "loss": out["loss"] * float("nan")} if self.calls in self.bad else out


@pytest.mark.parametrize("rows", [feature_loader, FeatureBatches])
def test_nan_steps_are_skipped_and_weights_stay_finite(rows):
    model, x, y, _ = _setup()
    before = [p.detach().clone() for p in model.parameters()]
    _train(model, x, y, NaNOn({1, 3}).fit_targets(list(range(3))), rows=rows)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_consecutive_nan_steps_stop_with_a_clear_error(tmp_path):
    model, x, y, _ = _setup(n=160)
    with pytest.raises(FloatingPointError, match="NaN/inf for 5 consecutive steps"):
        _train(model, x, y, NaNOn(range(3, 100)).fit_targets(list(range(3))), checkpoint_dir=tmp_path)
    assert load_latest(tmp_path) is None  # nothing from that epoch was written


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    model, x, y, task = _setup(n=64)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (not under nohup)

    def interrupt(info):
        if info["global_step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    settings_ckpt = dict(checkpoint_dir=tmp_path, on_step=interrupt)
    ctx = FitContext(Accelerator(cpu=True), log=lambda m: None, **settings_ckpt)
    settings = RunSettings(epochs=3, batch_size=16, desc="test")
    with pytest.raises(TrainingInterrupted, match="--resume") as e:
        Trainer(ctx).run(model, task, feature_loader(x, y, batch_size=16), FeatureExtraction(), settings, 0,
                         lambda core: None, None, None)
    ck = load_latest(tmp_path)
    assert e.value.checkpoint == ck["path"] and (ck["epoch"], ck["step"]) == (0, 3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    signal.signal(signal.SIGINT, before)


def test_task_that_needs_an_unlabeled_stream_is_refused_without_one():
    class NeedsUnlabeled(ClassificationTask):
        needs = ("unlabeled",)

    from headstart.backbones import build_backbone
    from headstart.model import TransferModel

    model = TransferModel(build_backbone("tiny:cnn"), build_head("linear", 8, 2))
    with pytest.raises(ValueError, match="needs unlabeled"):
        Trainer(FitContext(Accelerator(cpu=True))).fit(model, NeedsUnlabeled(), None, None, FeatureExtraction())
