"""Contrastive body tuning (SetFit-style): the pair loss against its formula written out, pairs
only inside the batch, a tiny fit whose bundle loads and predicts, the refusal of a frozen
backbone, and the exact step budget."""
import itertools

import numpy as np
import pytest
import torch

from headstart import Headstart
from headstart.tasks import build_task
from headstart.tasks.contrastive import pair_loss
from tests.conftest import write_text_csv


def _cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_pair_loss_matches_the_cosine_similarity_loss_written_out():
    rng = np.random.RandomState(0)
    f, y = rng.randn(5, 3), [0, 1, 0, 0, 1]
    pos, neg = [], []
    for i, j in itertools.combinations(range(5), 2):  # every pair of the batch, once
        (pos if y[i] == y[j] else neg).append((_cos(f[i], f[j]) - (y[i] == y[j])) ** 2)
    want = (np.mean(pos) + np.mean(neg)) / 2  # positives and negatives weigh the same (SetFit balances them)
    got = float(pair_loss(torch.tensor(f), torch.tensor(y)))
    assert got == pytest.approx(want, rel=1e-5)


def test_hard_mining_keeps_each_examples_least_similar_positive_and_most_similar_negative():
    rng = np.random.RandomState(1)
    f, y = rng.randn(6, 4), np.array([0, 0, 1, 1, 1, 0])
    hp = [min(_cos(f[i], f[j]) for j in range(6) if j != i and y[j] == y[i]) for i in range(6)]
    hn = [max(_cos(f[i], f[j]) for j in range(6) if y[j] != y[i]) for i in range(6)]
    want = (np.mean([(c - 1) ** 2 for c in hp]) + np.mean([c ** 2 for c in hn])) / 2
    got = float(pair_loss(torch.tensor(f), torch.tensor(y), "hard"))
    assert got == pytest.approx(want, rel=1e-5)


def test_the_loss_reaches_the_features_and_builds_only_the_batchs_pair_matrix():
    """Gradients flow to every feature row; a batch of one (no pair at all) gives a zero loss
    that still backpropagates, so a short last batch cannot break a step."""
    f = torch.randn(8, 4, requires_grad=True)
    pair_loss(f, torch.tensor([0, 1] * 4)).backward()
    assert (f.grad.abs().sum(1) > 0).all()
    one = torch.randn(1, 4, requires_grad=True)
    loss = pair_loss(one, torch.tensor([1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and one.grad is not None


def test_pairs_are_never_materialised_beyond_the_batch(tmp_path, monkeypatch):
    """The training loader yields the labeled examples themselves (N rows per epoch, batches of
    the strategy's size), not a list of N² pairs: memory stays flat in N."""
    from headstart.training import trainer as trainer_mod

    seen = []
    real = trainer_mod.make_loader

    def spy(*args, **kw):
        loader = real(*args, **kw)
        if kw.get("train"):
            seen.append((len(loader.dataset), loader.batch_size))
        return loader

    monkeypatch.setattr(trainer_mod, "make_loader", spy)
    _fit(tmp_path, n=20)
    assert seen == [(20, 8)]


def _fit(tmp_path, n=20, **kw):
    data = write_text_csv(tmp_path / "train.csv", n, 0)
    params = {"steps": 5, "max_steps": 5, "batch_size": 8, "lr": 1e-3, "init_head": "random", "augment": False}
    return Headstart(backbone="tiny:bert", task="contrastive", strategy="fine_tuning", strategy_params=params,
                     test_size=0.0, verbose=False, runtime={"cache_dir": False}, **kw).fit(data)


def test_tiny_fit_tunes_the_body_then_fits_a_probe_and_the_bundle_round_trips(tmp_path):
    est = _fit(tmp_path, run={"out": tmp_path / "bundle"})
    frozen = Headstart(backbone="tiny:bert", strategy="feature_extraction", test_size=0.0, verbose=False,
                       runtime={"cache_dir": False}).fit(tmp_path / "train.csv")  # same seed: the same init
    before, after = frozen.model_.backbone.state_dict(), est.model_.backbone.state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert len(est.history_) == 3 and "probe_C" in est.history_[-1]  # 2 epochs of body tuning, then the probe
    texts = ["the film was great and fun", "the film was dull and bad"]
    again = Headstart.load(tmp_path / "bundle")
    assert again.task_.name == "contrastive" and list(again.predict(texts)) == list(est.predict(texts))
    np.testing.assert_allclose(again.predict_proba(texts), est.predict_proba(texts), rtol=1e-5, atol=1e-6)


def test_the_step_budget_is_exact_in_optimizer_steps(tmp_path):
    steps = []
    _fit(tmp_path, n=20, run={"on_step": lambda info: steps.append(info["global_step"])})
    assert steps == [1, 2, 3, 4, 5]  # 20 texts in batches of 8: 3 steps an epoch, stopped after 5


def test_auto_picks_fine_tuning_and_says_why(tmp_path):
    data = write_text_csv(tmp_path / "train.csv", 12, 0)
    est = Headstart(backbone="tiny:bert", task="contrastive", test_size=0.0, verbose=False,
                    strategy_params={"steps": 2, "max_steps": 2}, runtime={"cache_dir": False}).fit(data)
    assert est.strategy_.name == "fine_tuning" and "tuned on pairs" in est.strategy_reason_


def test_a_frozen_backbone_strategy_is_refused_with_the_reason(tmp_path):
    data = write_text_csv(tmp_path / "train.csv", 12, 0)
    with pytest.raises(ValueError, match="contrastive tunes the backbone on pairs.*not feature_extraction"):
        Headstart(backbone="tiny:bert", task="contrastive", strategy="feature_extraction", test_size=0.0,
                  verbose=False, runtime={"cache_dir": False}).fit(data)


def test_unknown_mining_is_refused():
    with pytest.raises(ValueError, match="mining must be one of all, hard"):
        build_task("contrastive", mining="semi").fit_targets(["a", "b"])


def test_blend_mixes_the_pretrained_body_back_in(tmp_path):
    """blend=0 keeps the pretrained body exactly (WiSE-FT's end point); the head is still fitted."""
    from headstart.training.trainer import blend_weights

    est = _fit(tmp_path, task_params={"blend": 0.0})
    frozen = Headstart(backbone="tiny:bert", strategy="feature_extraction", test_size=0.0, verbose=False,
                       runtime={"cache_dir": False}).fit(tmp_path / "train.csv")
    before, after = frozen.model_.backbone.state_dict(), est.model_.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and "probe_C" in est.history_[-1]
    m = torch.nn.Linear(2, 1)
    start = {k: torch.zeros_like(v) for k, v in m.state_dict().items()}
    want = m.weight.detach().clone() * 0.25
    blend_weights(m, start, 0.25)
    torch.testing.assert_close(m.weight.detach(), want)


def test_fit_defaults_tune_the_body_on_pairs_at_64_texts_and_say_why(tmp_path):
    """Task and strategy auto on 64 texts of 2 classes: the contrastive task, its step budget, the reason."""
    data = write_text_csv(tmp_path / "train.csv", 64, 0)
    est = Headstart(backbone="tiny:bert", test_size=0.0, verbose=False, strategy_params={"steps": 2, "max_steps": 2},
                    runtime={"cache_dir": False}).fit(data)
    assert est.task_.name == "contrastive" and est.strategy_.max_steps == 2
    assert "32 per class" in est.strategy_reason_ and "pairs" in est.strategy_reason_


def test_an_explicit_task_keeps_the_fine_tune_at_64_texts(tmp_path):
    data = write_text_csv(tmp_path / "train.csv", 64, 0)
    est = Headstart(backbone="tiny:bert", task="classification", test_size=0.0, verbose=False,
                    strategy_params={"epochs": 1}, runtime={"cache_dir": False}).fit(data)
    assert est.task_.name == "classification" and est.strategy_.name == "fine_tuning"
