import torch

from headstart.api import Headstart
from headstart.training.checkpoint import load_latest, save_checkpoint


def _step(model, opt):
    opt.zero_grad()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()


def test_roundtrip_restores_model_optimizer_and_scheduler(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    _step(model, opt)
    sched.step()
    save_checkpoint(tmp_path, 1, model, opt, sched, {"strategy": "x"})
    ck = load_latest(tmp_path)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert ck["epoch"] == 1 and ck["extra"]["strategy"] == "x"
    torch.manual_seed(0)
    _step(model, opt)
    torch.manual_seed(0)
    _step(model2, opt2)
    assert torch.equal(model.weight, model2.weight) and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_latest_points_at_the_newest_and_old_ones_are_pruned(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    for e in range(1, 5):
        save_checkpoint(tmp_path, e, model, opt, sched, {})
    assert (tmp_path / "latest").read_text() == "epoch-0004"
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-0003", "epoch-0004"]
    assert not list(tmp_path.glob("*.pt*")) and not list(tmp_path.rglob("*.pkl"))


def test_fit_writes_a_checkpoint_per_epoch_and_resume_continues(tmp_path, image_data, capsys):
    kw = dict(backbone="tiny:cnn", strategy="fine_tuning", strategy_params={"epochs": 3}, out=tmp_path / "m")
    first = Headstart(verbose=False, **kw).fit(image_data[0], test=image_data[1])
    assert load_latest(tmp_path / "m" / "checkpoints")["epoch"] == 3
    again = Headstart(resume=True, **kw).fit(image_data[0], test=image_data[1])
    assert "resumed from epoch 3" in capsys.readouterr().out
    for a, b in zip(first.model_.state_dict().values(), again.model_.state_dict().values()):
        assert torch.equal(a, b)
