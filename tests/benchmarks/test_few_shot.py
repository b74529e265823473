"""benchmarks/few_shot.py: the options that shape one run."""
from benchmarks.few_shot import size_seeds


def test_seeds_at_gives_one_size_its_own_seeds_and_the_others_keep_seeds():
    assert size_seeds([16, 64], "0,1,2,3,4", ["64=0,1,2"]) == {16: [0, 1, 2, 3, 4], 64: [0, 1, 2]}


def test_lastlayer_method_runs_the_defaults_with_the_encoders_own_mean_pooling():
    from benchmarks.few_shot import methods

    (name,) = methods(["lastlayer"], [])
    assert "pooling=mean" in name
