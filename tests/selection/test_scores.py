import numpy as np
import pytest

from headstart.selection import SCORES, h_score, knn_accuracy, leep, logme, nce


def _features(separation, n=120, d=20, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    centres = rng.randn(classes, d) * separation
    return centres[y] + rng.randn(n, d), y


@pytest.mark.parametrize("score", [logme, h_score, knn_accuracy])
def test_feature_scores_prefer_features_that_separate_the_classes(score):
    good, y = _features(3.0)
    bad, _ = _features(0.0)
    assert score(good, y) > score(bad, y)


def _direct_log_evidence(f, t, alpha, beta):
    """log N(t | 0, I / beta + F F^T / alpha): the marginal likelihood LogME maximises."""
    n = len(t)
    cov = np.eye(n) / beta + f @ f.T / alpha
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (t @ np.linalg.solve(cov, t) + logdet + n * np.log(2 * np.pi))


def test_logme_evidence_equals_the_gaussian_marginal_likelihood_at_its_maximum():
    from headstart.selection.logme import _evidence
    f, y = _features(1.0, n=60, d=5)
    t = (y == 0).astype(float)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    ev, alpha, beta = _evidence(s ** 2, u.T @ t, float(t @ t), 60, 5)
    direct = _direct_log_evidence(f, t, alpha, beta)
    assert ev * 60 == pytest.approx(direct, rel=1e-6)
    for a, b in ((alpha * 1.5, beta), (alpha, beta * 0.7)):  # a maximum in alpha and beta
        assert _direct_log_evidence(f, t, a, b) < direct


def test_leep_and_nce_reward_source_labels_that_predict_the_target():
    rng = np.random.RandomState(0)
    y = np.arange(200) % 2
    informative = np.eye(4)[y * 2 + rng.randint(0, 2, 200)] * 0.9 + 0.025  # source class tells y
    useless = np.eye(4)[rng.randint(0, 4, 200)] * 0.9 + 0.025
    assert leep(informative, y) > leep(useless, y)
    assert nce(informative, y) > nce(useless, y)
    assert nce(informative, y) == pytest.approx(0.0, abs=1e-12)  # y is a function of z: H(Y|Z) = 0


def test_registry_lists_every_score():
    assert SCORES.list() == ["h_score", "knn", "leep", "logme", "nce"]


def _h_score_by_covariance(f, y):
    """The textbook route: a D x D Ledoit-Wolf covariance and its pseudo-inverse."""
    from sklearn.covariance import LedoitWolf
    f = f - f.mean(0)
    cov = LedoitWolf(assume_centered=True).fit(f).covariance_
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(0)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-12) @ (means.T @ means / len(f))))


@pytest.mark.parametrize("n,d", [(120, 20), (50, 200)])  # n > D and D > n (multi-scale features)
def test_h_score_in_sample_space_equals_the_covariance_route(n, d):
    f, y = _features(2.0, n=n, d=d)
    assert h_score(f, y) == pytest.approx(_h_score_by_covariance(f, y), rel=1e-9)


@pytest.mark.parametrize("n,d", [(300, 50), (100, 400)])  # both Gram routes: D x D and n x n
def test_logme_from_the_gram_matrix_equals_the_svd_route(n, d):
    from headstart.selection.logme import _evidence
    f, y = _features(1.0, n=n, d=d)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    ref = np.mean([_evidence(s ** 2, u.T @ (y == c).astype(float), float((y == c).sum()), n, d)[0]
                   for c in np.unique(y)])
    assert logme(f, y) == pytest.approx(ref, rel=1e-6)
