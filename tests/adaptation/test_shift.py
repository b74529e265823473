"""The shift statistics on synthetic features: null and shifted samples, the permutation
p-value's validity, and MMD² against its direct formula."""
import json

import numpy as np
import torch

from headstart.adaptation.shift import gaussian_kernel, mmd_permutation_test, shift_test


def _normal(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_identical_distributions_give_no_shift():
    r = shift_test(_normal(300, 16, 0), _normal(300, 16, 1), permutations=200, seed=0)
    assert r.p_value > 0.05 and abs(r.domain_accuracy - 0.5) < 0.08 and not r.shifted
    assert r.verdict.startswith("no detectable shift")


def test_mean_shift_is_detected_with_accuracy_near_one():
    shifted = _normal(300, 16, 1) + 2.0 * (np.arange(16) < 4)  # four coordinates moved by 2 sd
    r = shift_test(_normal(300, 16, 0), shifted, permutations=200, seed=0)
    assert r.p_value < 0.01 and r.domain_accuracy > 0.9 and r.proxy_a_distance > 1.6
    assert r.verdict.startswith("the target differs from the training data")


def test_p_value_is_never_zero_its_floor_is_one_over_one_plus_permutations():
    _, p, _ = mmd_permutation_test(_normal(40, 4, 0), _normal(40, 4, 1) + 10, permutations=19)
    assert p == 1 / 20


def test_false_positive_rate_on_two_halves_of_one_sample_is_near_the_level():
    pool = _normal(6000, 5, 7)
    rejected = sum(mmd_permutation_test(pool[60 * i:60 * i + 30], pool[60 * i + 30:60 * i + 60],
                                        permutations=99, seed=i)[1] < 0.05 for i in range(100))
    assert 1 <= rejected <= 11  # 5 expected; binomial(100, 0.05) lies in 1..11 with probability 0.99


def test_mmd2_equals_the_unbiased_formula_on_the_kernel():
    x, y = _normal(9, 3, 0), _normal(6, 3, 1) + 0.5
    mmd2, _, _ = mmd_permutation_test(x, y, permutations=1)
    z = np.concatenate([x, y])
    k, _ = gaussian_kernel((z - z.mean(0)) / z.std(0))
    kxx, kyy, kxy = k[:9, :9], k[9:, 9:], k[:9, 9:]
    direct = ((kxx.sum() - np.trace(kxx)) / (9 * 8) + (kyy.sum() - np.trace(kyy)) / (6 * 5) - 2 * kxy.mean())
    assert np.isclose(mmd2, direct, rtol=1e-10)


def test_torch_features_are_accepted_and_the_cap_is_reported():
    r = shift_test(torch.from_numpy(_normal(120, 4, 0)).float(), _normal(80, 4, 1), max_samples=50,
                   permutations=20)
    assert (r.n_source, r.n_target, r.n_source_total) == (50, 50, 120)
    assert any("source subsampled to 50 of 120" in n for n in r.notes)


def test_report_round_trips_through_json_with_its_verdict():
    r = shift_test(_normal(50, 4, 0), _normal(50, 4, 1) + 3, permutations=20)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["shifted"] is True and d["verdict"] == r.verdict and d["p_value"] == r.p_value
    assert "proxy A-distance" in r.format() and r.format().endswith(r.verdict)
