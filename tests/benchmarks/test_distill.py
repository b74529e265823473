"""benchmarks/distill.py's pool split: transfer set and validation split, disjoint and reproducible."""
import numpy as np

from benchmarks.distill import pool_split

POOL = np.setdiff1d(np.arange(20000), np.arange(0, 20000, 40))  # a training pool outside 500 "labels"


def test_validation_split_is_disjoint_from_the_transfer_set():
    transfer, val = pool_split(POOL, 3000, 500, seed=0)
    assert (len(set(val)), len(set(transfer) & set(val)), set(val) <= set(POOL)) == (500, 0, True)


def test_transfer_sets_are_nested_for_one_validation_split():
    small, val_small = pool_split(POOL, 1000, 500, seed=0)
    large, val_large = pool_split(POOL, 4000, 500, seed=0)
    assert set(small) <= set(large) and np.array_equal(val_small, val_large)


def test_no_validation_split_keeps_the_earlier_transfer_set():
    transfer, val = pool_split(POOL, 2000, 0, seed=0)
    earlier = np.random.default_rng(1000).choice(POOL, 2000, replace=False)  # the draw before --val existed
    assert len(val) == 0 and np.array_equal(transfer, earlier)
