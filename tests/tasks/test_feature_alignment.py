"""feature_align: per-domain standardisation of cached features, a probe, optional self-training,
and the target statistics folded into the head."""
import numpy as np
import pytest
import torch

from headstart import Headstart
from headstart.heads.linear import LinearHead
from headstart.tasks import build_task
from headstart.tasks.feature_alignment import _fold_standardisation, confident_per_class, domain_stats
from tests.conftest import write_image_folder


def test_folded_standardisation_equals_standardising_first():
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 3)
    x = torch.randn(10, 6) * 4 + 2
    mean, sd = domain_stats(x)
    want = layer(((x.double() - mean) / sd).float())
    _fold_standardisation(layer, mean, sd)
    assert torch.allclose(layer(x), want, atol=1e-5)


def test_confident_per_class_keeps_the_surest_fraction_of_each_predicted_class():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55]])
    assert confident_per_class(proba, 0.5).tolist() == [0, 2, 4]  # two of four class-0 rows, one of two class-1


def _shifted_domains(n: int = 120, d: int = 20, seed: int = 0):
    """Two Gaussian classes; the target is the source scaled and offset per dimension, so a probe
    on raw source features misreads it and per-domain standardisation undoes the shift."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    means = rng.randn(2, d) * 1.5
    xs = means[y] + rng.randn(n, d)
    yt = rng.randint(0, 2, n)
    xt = (means[yt] + rng.randn(n, d)) * rng.uniform(0.5, 2, d) + 3 * (means[1] - means[0])  # offset along the boundary
    return torch.tensor(xs, dtype=torch.float32), y, torch.tensor(xt, dtype=torch.float32), yt


@pytest.mark.parametrize("rounds", [0, 2])
def test_alignment_recovers_a_per_dimension_shift_that_breaks_the_source_only_probe(rounds):
    xs, ys, xt, yt = _shifted_domains()
    plain, aligned = LinearHead(20, 2), LinearHead(20, 2)
    build_task("classification").fit_targets(ys).shortcut(plain, xs, ys, block_dims=None, standardize=True,
                                                            balanced=False, seed=0)
    task = build_task("feature_align", self_training=rounds).fit_targets(ys)
    info = task.shortcut(aligned, xs, ys, block_dims=None, standardize=True, balanced=False, seed=0, unlabeled=xt)
    with torch.no_grad():
        acc_plain = (plain(xt).argmax(1).numpy() == yt).mean()
        acc_aligned = (aligned(xt).argmax(1).numpy() == yt).mean()
    assert acc_aligned >= 0.9 and acc_aligned > acc_plain + 0.2
    assert (info["pseudo_labeled"] > 0) == (rounds > 0)


def test_feature_align_refuses_a_head_it_cannot_fit_in_closed_form():
    xs, ys, xt, _ = _shifted_domains()
    from headstart.heads.mlp import MLPHead
    task = build_task("feature_align").fit_targets(ys)
    with pytest.raises(ValueError, match="use head='linear'"):
        task.shortcut(MLPHead(20, 2), xs, ys, block_dims=None, standardize=True, balanced=False, seed=0, unlabeled=xt)


def test_fit_with_feature_align_keeps_the_backbone_frozen_and_predicts_the_target(tmp_path):
    src = write_image_folder(tmp_path / "src", 6)
    tgt = write_image_folder(tmp_path / "tgt", 4)
    est = Headstart(backbone="tiny:cnn", adapt="feature_align", verbose=False, test_size=0.0,
                    runtime={"cache_dir": False}).fit(src, unlabeled=tgt)
    assert est.strategy_.name == "feature_extraction" and "cached features" in est.strategy_reason_
    assert len(est.predict(tgt)) == len(list(tgt.rglob("*.png")))


def test_feature_align_with_fine_tuning_is_refused(tmp_path):
    src = write_image_folder(tmp_path / "src", 4)
    with pytest.raises(ValueError, match="adapts on cached features in closed form"):
        Headstart(backbone="tiny:cnn", adapt="feature_align", strategy="fine_tuning", verbose=False,
                  runtime={"cache_dir": False}).fit(src, unlabeled=src)


def test_choose_keeps_alignment_when_the_label_free_criterion_prefers_it():
    xs, ys, xt, yt = _shifted_domains()
    head = LinearHead(20, 2)
    task = build_task("feature_align", choose=True).fit_targets(ys)
    info = task.shortcut(head, xs, ys, block_dims=None, standardize=True, balanced=False, seed=0, unlabeled=xt)
    im = task.choice_["information_maximisation"]
    assert task.choice_["kept"] == "feature_align" and im["feature_align"] < im["source_only"] and info["adapted"]
    with torch.no_grad():
        assert (head(xt).argmax(1).numpy() == yt).mean() >= 0.9


def test_choose_returns_the_source_only_probe_when_alignment_is_not_preferred():
    """An 'aligned' head that knows nothing (all logits 0: uncertain, IM 0) against the source-only
    probe on separable data (confident and diverse, IM < 0): the probe replaces it, and it is said."""
    xs, ys, _, _ = _shifted_domains()
    task = build_task("feature_align", choose=True).fit_targets(ys)
    head = LinearHead(20, 2)
    torch.nn.init.zeros_(head.fc.weight), torch.nn.init.zeros_(head.fc.bias)
    said = task._choose(head, xs, ys, xs, 1.0, dict(block_dims=None, standardize=True, balanced=False, seed=0))
    assert task.choice_["kept"] == "source_only" and "the source-only model is returned" in said
    plain = LinearHead(20, 2)
    build_task("classification").fit_targets(ys).shortcut(plain, xs, ys, block_dims=None, standardize=True,
                                                            balanced=False, seed=0, C=1.0)
    assert torch.equal(head.fc.weight, plain.fc.weight) and torch.equal(head.fc.bias, plain.fc.bias)


def test_adapt_auto_is_feature_align_that_may_keep_source_only(tmp_path):
    src = write_image_folder(tmp_path / "src", 6)
    est = Headstart(backbone="tiny:cnn", adapt="auto", verbose=False, test_size=0.0,
                    runtime={"cache_dir": False}).fit(src, unlabeled=src)
    assert est.task_.name == "feature_align" and est.task_.choose and est.task_.self_training == 3
    assert est.task_.choice_["kept"] in ("feature_align", "source_only")
