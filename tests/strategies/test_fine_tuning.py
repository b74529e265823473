import pytest

from headstart.backbones import build_backbone
from headstart.heads import build_head
from headstart.model import TransferModel
from headstart.strategies.fine_tuning import FineTuning, parse_freeze, set_batchnorm_eval
from headstart.strategies.gradual_unfreezing import GradualUnfreezing


@pytest.mark.parametrize("spec,expected", [("none", set()), ("all", {0, 1, 2, 3}), ("first:2", {0, 1}),
                                           ("all-but-last:1", {0, 1, 2})])
def test_parse_freeze(spec, expected):
    assert parse_freeze(spec, 4) == expected


@pytest.mark.parametrize("bad", ["first", "last:2", "first:9", "some"])
def test_parse_freeze_rejects_bad_specs(bad):
    with pytest.raises(ValueError):
        parse_freeze(bad, 4)


def test_layerwise_lr_decays_towards_the_input_and_head_lr_is_separate():
    model = TransferModel(build_backbone("tiny:cnn"), build_head("linear", 64, 3))
    s = FineTuning(lr=1e-3, head_lr=5e-3, layer_decay=0.5)
    lrs = {g["group"]: g["lr"] for g in s.param_groups(model)}
    assert lrs == pytest.approx({0: 2.5e-4, 1: 5e-4, 2: 1e-3, 3: 5e-3})


def test_no_weight_decay_on_biases_and_norms():
    model = TransferModel(build_backbone("tiny:cnn"), build_head("linear", 64, 3))
    for g in FineTuning(weight_decay=0.1).param_groups(model):
        if g["group"] < 3:
            assert all((p.ndim > 1) == (g["weight_decay"] > 0) for p in g["params"])


def test_batchnorm_in_frozen_groups_stays_in_eval_mode():
    bb = build_backbone("tiny:cnn").train()
    trainable = {id(p) for p in bb.blocks[2].parameters()}
    set_batchnorm_eval(bb, trainable)
    modes = [b[1].training for b in bb.blocks]
    assert modes == [False, False, True]


def test_gradual_unfreezing_opens_one_group_per_stage_from_the_top():
    s = GradualUnfreezing(epochs_per_group=2)
    assert [sorted(s.trainable_groups(e, 3)) for e in range(6)] == [[2], [2], [1, 2], [1, 2], [0, 1, 2], [0, 1, 2]]


def test_strategy_init_only_stores_parameters():
    s = FineTuning(freeze="bogus", batchnorm="nope")
    assert s.get_params()["freeze"] == "bogus"  # validated in fit, not in __init__
