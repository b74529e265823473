"""The benchmarks' splits are the anchors' splits (same indices), checked on synthetic labels."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from benchmarks import splits as ours

ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "splits.py"


@pytest.fixture(scope="module")
def theirs():
    if not ANCHORS.is_file():
        pytest.fail(f"{ANCHORS} not found: the anchors' splits must sit beside the checkout")
    spec = importlib.util.spec_from_file_location("anchor_splits", ANCHORS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("n,seed", [(100, 0), (500, 1), (2000, 2)])
def test_image_subsets_identical(theirs, n, seed):
    y = np.random.RandomState(9).randint(0, 10, 6000)
    assert np.array_equal(ours.stratified_indices(y, n, seed), theirs.stratified_indices(y, n, seed))


@pytest.mark.parametrize("n,seed", [(16, 3), (64, 0), (500, 2)])
def test_text_subsets_identical(theirs, n, seed):
    y = (np.random.RandomState(5).rand(3000) < 0.58).astype(np.int64)
    assert np.array_equal(ours.text_train_indices(y, n, seed), theirs.text_train_indices(y, n, seed))
