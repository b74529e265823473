"""The feature reference predict checks inputs against: the hashed projection is pinned, the
batch verdict stays quiet on fitted-for data across seeds and fires on a clear shift, per-input
scores sit near 1 in distribution, and the streamed sample is uniform."""
import numpy as np
import pytest

from headstart.adaptation.reference import (
    MIN_BATCH,
    WIDTH,
    FeatureReference,
    Reservoir,
    _hash_buckets,
)

D = 600  # above WIDTH: the hashed projection is used


def _features(n: int, seed: int, offset: float = 0.0, mixing_seed: int = 0) -> np.ndarray:
    """ReLU features of a 12-factor latent model (the same mixing for every call): like pooled
    CNN features, correlated and non-negative; ``offset`` moves the latent factors."""
    mix = np.random.default_rng(mixing_seed).normal(size=(12, D))
    z = np.random.default_rng(seed).normal(size=(n, 12)) + offset
    return np.maximum(z @ mix, 0.0)


def test_the_hash_is_pure_integer_arithmetic_and_pinned():
    bucket, sign = _hash_buckets(1000, WIDTH)
    again = _hash_buckets(1000, WIDTH)
    assert np.array_equal(bucket, again[0]) and np.array_equal(sign, again[1])
    assert bucket[:6].tolist() == [175, 193, 206, 237, 202, 90] and sign[:6].tolist() == [-1, 1, 1, -1, 1, 1]
    assert 0 <= bucket.min() and bucket.max() < WIDTH and set(np.unique(sign)) == {-1.0, 1.0}
    assert np.bincount(bucket, minlength=WIDTH).max() <= 12  # spread over the buckets (mean 3.9)


def test_fitted_for_batches_do_not_warn_across_seeds():
    ref = FeatureReference.from_features(_features(1000, 0))
    warned = [ref.check(ref.project(_features(200, seed))).shifted for seed in range(1, 21)]
    assert sum(warned) == 0


def test_a_clearly_shifted_batch_warns_and_its_message_says_so():
    ref = FeatureReference.from_features(_features(1000, 0))
    check = ref.check(ref.project(_features(200, 1, offset=2.0)))
    assert check.shifted and check.farther > 0.9 and check.p_value < 0.01
    assert check.message().startswith("these 200 inputs differ from the training data")


def test_a_batch_of_one_region_is_not_called_out_of_distribution():
    """All inputs near one part of the fitted-for data (one class, say): different, but not new."""
    ref = FeatureReference.from_features(_features(1000, 0))
    x = _features(4000, 1)
    one_side = x[x[:, 0] > np.quantile(x[:, 0], 0.7)][:200]
    check = ref.check(ref.project(one_side))
    assert check.p_value < 0.01 and not check.shifted


def test_small_batches_and_small_references_are_not_judged():
    ref = FeatureReference.from_features(_features(1000, 0))
    assert ref.check(ref.project(_features(MIN_BATCH - 1, 1, offset=3.0))) is None
    tiny = FeatureReference.from_features(_features(10, 0))
    assert tiny.check(tiny.project(_features(100, 1, offset=3.0))) is None


def test_scores_are_near_one_in_distribution_and_large_out_of_it():
    ref = FeatureReference.from_features(_features(1000, 0))
    inside = ref.scores(ref.project(_features(300, 1)))
    outside = ref.scores(ref.project(_features(300, 2, offset=3.0)))
    assert 0.7 < np.median(inside) < 1.3 and np.median(outside) > 3 * np.median(inside)


def test_the_stored_tensors_rebuild_the_same_reference():
    ref = FeatureReference.from_features(_features(400, 0), source="unlabeled target data")
    back = FeatureReference.from_tensors(ref.tensors(), ref.meta())
    x = ref.project(_features(50, 1))
    assert back.source == "unlabeled target data" and ref.meta()["rows"] == 256 and ref.meta()["width"] == WIDTH
    assert np.allclose(back.scores(back.project(_features(50, 1))), ref.scores(x), rtol=1e-4)


def test_features_of_the_wrong_width_are_refused():
    ref = FeatureReference.from_features(_features(100, 0))
    with pytest.raises(ValueError, match="dimensions"):
        ref.project(np.zeros((3, D + 1)))


def test_non_finite_features_do_not_stop_predict_they_count_as_typical():
    ref = FeatureReference.from_features(_features(100, 0))
    x = _features(2, 1)
    x[0, :5] = np.nan
    x[1, 7] = np.inf
    assert np.isfinite(ref.scores(ref.project(x))).all()


def test_the_reservoir_keeps_a_uniform_sample_of_the_stream():
    firsts = []
    for seed in range(200):
        r = Reservoir(10, seed)
        for start in range(0, 100, 7):
            r.add(np.arange(start, min(start + 7, 100))[:, None])
        assert r.seen == 100 and len(r.rows) == 10
        firsts.append(np.mean(r.rows[:, 0] < 50))
    assert abs(np.mean(firsts) - 0.5) < 0.05  # a prefix-only sample would give 1.0
