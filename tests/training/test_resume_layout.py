"""Exact resume with fused AdamW over channels_last weights (issue 18).

Checkpoints store tensors contiguous (NCHW), so Adam's moments of channels_last parameters came
back with other strides than their parameters; the fused kernel walks parameter, gradient and
moments as flat memory and paired the wrong elements, so a resumed CNN fine-tune drifted from
an uninterrupted one (max |delta| ~5e-5 on EfficientNet-Lite0). tiny:cnn is not converted to
channels_last (fewer than 4 convolutions), so the kill tests on it could not see this."""
import pytest
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from headstart.model import HeadModel
from headstart.strategies import FeatureExtraction, RunSettings
from headstart.tasks import ClassificationTask
from headstart.training.checkpoint import load_latest
from headstart.training.context import FitContext
from headstart.training.trainer import Trainer


def _cnn(seed=0):
    torch.manual_seed(seed)
    # the 3-channel stem is the layer whose channels_last memory order differs from NCHW
    body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    return HeadModel(body.to(memory_format=torch.channels_last))


def _loader():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 3, 8, 8, generator=g), torch.arange(16) % 3
    ds = TensorDataset(x.contiguous(memory_format=torch.channels_last), y)
    return DataLoader(ds, batch_size=4, collate_fn=lambda rows: {"inputs": torch.stack([r[0] for r in rows]),
                                                               "targets": torch.stack([r[1] for r in rows])})


class Killed(Exception):
    pass


def _kill_at(step):
    def on_step(info):
        if info["global_step"] == step:
            raise Killed
    return on_step


def _train(model, epochs, ckpt, resume=False, on_step=None):
    ctx = FitContext(Accelerator(cpu=True), checkpoint_dir=ckpt, log=lambda m: None, on_step=on_step)
    task = ClassificationTask().fit_targets([0, 1, 2])
    settings = RunSettings(epochs=epochs, batch_size=4, desc="test")
    trainer = Trainer(ctx)
    trainer.run(model, task, _loader(), FeatureExtraction(lr=1e-2), settings, 0, lambda core: None, None,
                load_latest(ckpt) if resume else None)
    return trainer


def test_optimizer_state_comes_back_laid_out_like_its_parameters(tmp_path, monkeypatch):
    import headstart.training.trainer as trainer_mod

    seen = {}
    real = trainer_mod.load_optimizer_state

    def spy(opt, state):
        real(opt, state)
        seen["opt"] = opt
    monkeypatch.setattr(trainer_mod, "load_optimizer_state", spy)
    model = _cnn()
    _train(model, 1, tmp_path)
    model2 = _cnn(seed=1)
    _train(model2, 1, tmp_path, resume=True)  # loads, trains nothing
    opt2 = seen["opt"]
    assert opt2.defaults.get("fused")
    for p2 in model2.parameters():
        for k in ("exp_avg", "exp_avg_sq"):
            assert opt2.state[p2][k].stride() == p2.stride(), k


def test_resumed_fused_adamw_on_channels_last_weights_is_bitwise_equal(tmp_path):
    model = _cnn()
    assert not model.head[0].weight.is_contiguous()  # what the bug needs: a channels_last stem
    _train(model, 3, tmp_path / "full")
    with pytest.raises(Killed):  # the "killed" run: its first step after the epoch-1 checkpoint
        _train(_cnn(), 3, tmp_path / "cut", on_step=_kill_at(5))
    resumed = _cnn(seed=1)  # other initial weights: everything must come from the checkpoint
    _train(resumed, 3, tmp_path / "cut", resume=True)
    want, got = model.state_dict(), resumed.state_dict()
    different = [k for k in want if not torch.equal(want[k], got[k])]
    assert not different, f"weights differ after resume: {different}"
