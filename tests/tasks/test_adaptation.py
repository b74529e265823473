"""Domain adaptation tasks: the gradient reversal, the alignment losses against their formulas,
and a tiny run through fit with an unlabeled target stream."""
import numpy as np
import pytest
import torch

from headstart import Headstart
from headstart.tasks import build_task
from headstart.tasks.adaptation import (
    DomainOutput,
    MultilinearMap,
    coral_loss,
    entropy_weights,
    information_maximisation,
    mmd_loss,
    ramp,
    reverse_gradient,
)
from tests.conftest import write_image_folder


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient_exactly():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64)
    y = reverse_gradient(x, 0.7)
    (y * w).sum().backward()
    assert torch.equal(y.detach(), x.detach()) and torch.equal(x.grad, -0.7 * w)


def test_ramp_starts_at_zero_and_approaches_one():
    assert ramp(0.0) == 0.0 and 0.99 < ramp(1.0) < 1.0 and ramp(0.3) > 0.9


def test_coral_is_the_squared_frobenius_distance_of_the_covariances():
    rng = np.random.RandomState(0)
    a, b = rng.randn(20, 4), rng.randn(30, 4) * 2 + 1
    want = ((np.cov(a, rowvar=False) - np.cov(b, rowvar=False)) ** 2).sum() / (4 * 4 * 4)
    assert float(coral_loss(torch.tensor(a), torch.tensor(b))) == pytest.approx(want, rel=1e-5)


def test_mmd_matches_the_biased_estimate_written_out():
    rng = np.random.RandomState(1)
    a, b = rng.randn(6, 3), rng.randn(5, 3) + 0.5
    x = np.vstack([a, b])
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    base = d2.sum() / (len(x) * (len(x) - 1))
    k = sum(np.exp(-d2 / (s * base)) for s in (0.25, 0.5, 1.0, 2.0, 4.0))
    want = k[:6, :6].mean() + k[6:, 6:].mean() - 2 * k[:6, 6:].mean()
    got = float(mmd_loss(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)))
    assert got == pytest.approx(want, rel=1e-4)
    assert float(mmd_loss(torch.tensor(a), torch.tensor(a))) == pytest.approx(0.0, abs=1e-6)


def test_information_maximisation_prefers_confident_and_diverse_predictions():
    confident_diverse = torch.tensor([[9.0, 0.0], [0.0, 9.0]])
    collapsed = torch.tensor([[9.0, 0.0], [9.0, 0.0]])
    uncertain = torch.zeros(2, 2)
    im = [float(information_maximisation(x)) for x in (confident_diverse, collapsed, uncertain)]
    assert im[0] < im[1] and im[0] < im[2]
    assert im[0] == pytest.approx(-np.log(2), abs=2e-3)  # 9-logit margins: near one-hot


@pytest.mark.parametrize("name", ["dann", "cdan", "coral", "mmd", "entropy"])
def test_alignment_term_reaches_the_target_features(name):
    task = build_task(name).fit_targets(["a", "b"])
    task.modules(4)
    fs, ft = torch.randn(6, 4, requires_grad=True), (torch.randn(6, 4) * 3 + 1).requires_grad_()
    logits_t = ft @ torch.randn(4, 2)
    out = DomainOutput(fs, fs @ torch.randn(4, 2), ft, logits_t)
    terms = task.loss(out, {"targets": torch.tensor([0, 1, 0, 1, 0, 1])}, 0.5)
    terms["loss"].backward()
    assert terms["alignment"] != 0 and ft.grad is not None and ft.grad.abs().sum() > 0


def test_dann_pushes_the_features_against_its_discriminator():
    """The discriminator descends its loss while the features ascend it (reversed gradient)."""
    torch.manual_seed(0)
    task = build_task("dann").fit_targets(["a", "b"])
    disc = task.modules(4)["discriminator"]
    fs, ft = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    out = DomainOutput(fs, torch.zeros(8, 2), ft, torch.zeros(8, 2))
    task.alignment(out, 1.0)["alignment"].backward()
    with torch.no_grad():
        before = float(task.alignment(out, 1.0)["alignment"])
        for p in disc.parameters():
            p -= 0.05 * p.grad
        after_disc = float(task.alignment(out, 1.0)["alignment"])
        moved = DomainOutput(fs - 0.05 * fs.grad, torch.zeros(8, 2), ft - 0.05 * ft.grad, torch.zeros(8, 2))
        after_features = float(task.alignment(moved, 1.0)["alignment"])
    assert after_disc < before and after_features > after_disc


def test_multilinear_map_is_the_flattened_outer_product_of_predictions_and_features():
    f, g = torch.randn(3, 4), torch.softmax(torch.randn(3, 2), 1)
    got = MultilinearMap(4, 2)(f, g)
    assert got.shape == (3, 8)
    assert torch.allclose(got[1].view(2, 4), torch.outer(g[1], f[1]))


def test_randomised_multilinear_map_preserves_inner_products_in_expectation():
    """E <T(f1,g1), T(f2,g2)> = <f1,f2> <g1,g2> over the random matrices (Long et al. 2018, Thm 1):
    the mean over 400 maps (400 seeds) of a 32-wide map of a 64-wide product."""
    torch.manual_seed(0)
    f, g = torch.randn(2, 16), torch.softmax(torch.randn(2, 4) * 2, 1)
    est = []
    for seed in range(400):
        m = MultilinearMap(16, 4, max_dim=32, seed=seed)
        t = m(f, g)
        est.append([float(t[0] @ t[1]), float(t[0] @ t[0])])
    assert m.randomised and m(f, g).shape == (2, 32)
    cross, norm = np.mean(est, axis=0)
    want_norm = float((f[0] @ f[0]) * (g[0] @ g[0]))
    assert cross == pytest.approx(float((f[0] @ f[1]) * (g[0] @ g[1])), abs=0.1 * want_norm)
    assert norm == pytest.approx(want_norm, rel=0.1)


def test_entropy_weights_favour_confident_examples_and_average_one():
    p = torch.tensor([[0.98, 0.02], [0.5, 0.5], [0.7, 0.3]])
    w = entropy_weights(p)
    h = -(p * p.log()).sum(1)
    want = (1 + torch.exp(-h)) / (1 + torch.exp(-h)).sum() * 3
    assert torch.allclose(w, want) and w[0] > w[2] > w[1]


def test_cdan_reverses_the_gradient_into_features_and_not_into_predictions():
    torch.manual_seed(0)
    task = build_task("cdan").fit_targets(["a", "b", "c"])
    task.modules(4)
    fs, ft = torch.randn(5, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    ls, lt = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    task.alignment(DomainOutput(fs, ls, ft, lt), 1.0)["alignment"].backward()
    assert fs.grad.abs().sum() > 0 and ft.grad.abs().sum() > 0
    assert ls.grad is None and lt.grad is None  # the conditioning predictions are detached, as in CDAN


def test_adaptation_fits_end_to_end_with_an_unlabeled_target(tmp_path):
    src = write_image_folder(tmp_path / "src", 6)
    tgt = write_image_folder(tmp_path / "tgt", 4)
    est = Headstart(backbone="tiny:cnn", task="dann", verbose=False, test_size=0.0,
                    strategy_params={"epochs": 2, "batch_size": 8, "init_head": "random"},
                    runtime={"cache_dir": False}).fit(src, unlabeled=tgt)
    assert est.strategy_.name == "fine_tuning" and "unlabeled target" in est.strategy_reason_
    assert len(est.predict(tgt)) == len(list(tgt.rglob("*.png")))


def test_adaptation_with_a_frozen_backbone_is_refused(tmp_path):
    src = write_image_folder(tmp_path / "src", 4)
    with pytest.raises(ValueError, match="needs a strategy that trains the backbone"):
        Headstart(backbone="tiny:cnn", task="coral", strategy="feature_extraction", verbose=False,
                  runtime={"cache_dir": False}).fit(src, unlabeled=src)


def test_fit_with_an_unlabeled_target_reports_the_shift_first(tmp_path, capsys):
    """A flat folder of inverted images: read without labels, and the shift said before training."""
    from PIL import ImageOps

    from tests.conftest import COLOURS, make_image

    src = write_image_folder(tmp_path / "src", 8)
    flat = tmp_path / "target"
    flat.mkdir()
    for c, rgb in COLOURS.items():
        for i in range(8):
            ImageOps.invert(make_image(rgb, 7000 + i)).save(flat / f"{c}_{i}.png")
    est = Headstart(backbone="tiny:cnn", adapt="adabn", strategy="feature_extraction", test_size=0.0,
                    runtime={"cache_dir": False}).fit(src, unlabeled=flat)
    out = capsys.readouterr().out
    assert est.shift_.shifted and "target data: the target differs from the training data" in out
    assert out.index("target data:") < out.index("strategy feature_extraction")
