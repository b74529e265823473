"""The benchmarks' splits are the anchors' splits (same indices), checked on synthetic labels.

The expected indices were computed once with ../shared/anchors/splits.py and are pinned here as
SHA-256 digests of the int64 index arrays (plus the first five indices, readable when a digest
differs): the tests depend only on the repository."""
import hashlib

import numpy as np
import pytest

from benchmarks import splits as ours


def _digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, dtype=np.int64).tobytes()).hexdigest()


IMAGE = {(100, 0): ("e8c53d98a1dadc57c06af7b5d9139b0295c64cbf5d91d13ad83af2f11ff31698", [5551, 3293, 3566, 2310, 4209]),
         (500, 1): ("e9187258122fe67d1e2521445f08160cd8f20565d769e201fece7a6efe95d8cf", [3129, 3275, 3382, 2161, 5381]),
         (2000, 2): ("78316a3ac05f7c8c04d79a6c1e85e6f811c6733bb7d62d568c08a47b6325db05", [640, 2826, 1350, 1917, 5275])}
TEXT = {(16, 3): ("6cbdb3ea60bfe39e14f041fffcbc908bf59876f3b864475aab794f36595d7239", [2048, 992, 2304, 565, 1815]),
        (64, 0): ("394660b2e29f6acaf887742171eca4ea70da03edc7fb2c3a3ff4ea7c5c01f57b", [122, 521, 2374, 2015, 34]),
        (500, 2): ("0c510ebb0791fa8f45cc1fbfa62490f4c777c86acd7444bae293fdf142792a1a", [728, 1972, 671, 2183, 1645])}


@pytest.mark.parametrize("n,seed", sorted(IMAGE))
def test_image_subsets_identical(n, seed):
    y = np.random.RandomState(9).randint(0, 10, 6000)
    idx = ours.stratified_indices(y, n, seed)
    assert (idx[:5].tolist(), _digest(idx)) == (IMAGE[n, seed][1], IMAGE[n, seed][0])


@pytest.mark.parametrize("n,seed", sorted(TEXT))
def test_text_subsets_identical(n, seed):
    y = (np.random.RandomState(5).rand(3000) < 0.58).astype(np.int64)
    idx = ours.text_train_indices(y, n, seed)
    assert (idx[:5].tolist(), _digest(idx)) == (TEXT[n, seed][1], TEXT[n, seed][0])
