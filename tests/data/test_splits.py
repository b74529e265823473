import numpy as np

from headstart.data.splits import stratified_split


def test_split_is_stratified_disjoint_and_seeded():
    y = ["a"] * 50 + ["b"] * 10
    keep, held = stratified_split(y, 0.2, seed=3)
    assert set(keep).isdisjoint(held) and len(keep) + len(held) == 60
    assert [np.asarray(y)[held].tolist().count(c) for c in "ab"] == [10, 2]
    assert np.array_equal(held, stratified_split(y, 0.2, seed=3)[1])
    assert not np.array_equal(held, stratified_split(y, 0.2, seed=4)[1])


def test_single_example_classes_stay_in_training():
    keep, held = stratified_split(["a", "a", "a", "b"], 0.5, seed=0)
    assert 3 in keep and 3 not in held and len(held) == 2
