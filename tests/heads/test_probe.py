import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from headstart.heads import build_head
from headstart.heads.probe import fit_probe


def _data(n, d, classes, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    x = rng.randn(n, d) * 0.5 + (np.eye(classes)[y] @ rng.randn(classes, d)) * 0.3
    return torch.tensor(x, dtype=torch.float32), y


@pytest.mark.parametrize("classes", [2, 4])
def test_probe_head_equals_sklearn_on_the_full_standardised_features(classes):
    """The span trick (fit in n-dim coordinates when D >> n) must give the same model."""
    x, y = _data(40, 300, classes)
    head = build_head("linear", 300, classes)
    fit_probe(x, y, head, C=0.5)
    xn = x.double().numpy()
    mu, sd = xn.mean(0), (xn.std(0) + 1e-6) * np.sqrt(300)
    ref = LogisticRegression(C=0.5, max_iter=10000, tol=1e-10).fit((xn - mu) / sd, y)
    xt, _ = _data(30, 300, classes, seed=1)
    with torch.no_grad():
        ours = torch.softmax(head(xt), 1).numpy()
    np.testing.assert_allclose(ours, ref.predict_proba((xt.double().numpy() - mu) / sd), atol=2e-3)


def test_probe_picks_C_by_cross_validation_and_reports_it():
    x, y = _data(60, 50, 3)
    info = fit_probe(x, y, build_head("linear", 50, 3))
    assert info["C"] in (0.1, 0.3, 1.0, 3.0, 10.0) and 0 <= info["cv_accuracy"] <= 1


def test_blocks_must_add_up():
    x, y = _data(20, 10, 2)
    with pytest.raises(ValueError, match="do not add up"):
        fit_probe(x, y, build_head("linear", 10, 2), block_dims=[4, 4])


def test_class_absent_from_training_is_never_predicted():
    x, y = _data(30, 8, 3)
    head = build_head("linear", 8, 4)  # a 4th class with no examples
    fit_probe(x, y, head, C=1.0)
    with torch.no_grad():
        assert (head(x).argmax(1) != 3).all()


def test_one_vs_rest_out_of_fold_probabilities_match_cold_fits_at_the_chosen_C():
    """The warm-started C path must give each fold's own model: compare with cold fits."""
    from sklearn.model_selection import StratifiedKFold

    from headstart.heads.feature_basis import FeatureBasis
    from headstart.heads.probe import fit_one_vs_rest

    x, y = _data(60, 80, 3)
    targets = np.eye(3)[y]
    targets[:, 2] = 0
    targets[0, 2] = 1  # one positive: too few to cross-validate
    info = fit_one_vs_rest(x, targets, build_head("linear", 80, 3), seed=0)
    assert np.isnan(info["oof"][:, 2]).all() and np.isfinite(info["oof"][:, :2]).all()
    zr = FeatureBasis.fit(x.double().numpy()).transform(x.double().numpy())
    ref = np.zeros(60)
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(zr, targets[:, 0]):
        lr = LogisticRegression(C=info["label_C"][0], max_iter=5000, tol=1e-10)
        ref[te] = lr.fit(zr[tr], targets[tr, 0]).predict_proba(zr[te])[:, 1]
    np.testing.assert_allclose(info["oof"][:, 0], ref, atol=2e-3)
