"""Pruning: structured pruning reaches the FLOPs target in rounds with recovery, the pruned
bundle rebuilds its architecture from headstart.json (no original weights) and predicts as the
in-memory model did, unstructured pruning is made permanent, bad settings are refused."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

import headstart
from headstart.backbones import build_backbone
from headstart.compression.architecture import apply_architecture
from headstart.compression.prune import (
    count_flops,
    example_inputs,
    prune_bundle,
    prune_channels,
    prune_magnitude,
    recalibrate_batchnorm,
    recovery,
    save_compressed,
)
from headstart.data._base import LabeledData
from headstart.tasks.distillation import TeacherLogits
from headstart.heads import build_head
from headstart.model import TransferModel


def _model(spec: str = "tiny:cnn") -> TransferModel:
    torch.manual_seed(0)
    bb = build_backbone(spec)
    return TransferModel(bb, build_head("linear", bb.num_features, 3)).eval()


def test_channel_pruning_removes_the_asked_share_of_flops():
    model, x = _model(), torch.randn(1, 3, 32, 32)
    before = count_flops(model, x)
    calls = []
    lineage = prune_channels(model, x, 0.5, steps=2, recover=lambda m: calls.append(m) or [{}])
    after = count_flops(model, x)
    assert 0.35 * before <= after <= 0.5 * before  # at least half gone, not far past the target
    assert lineage["flops_before"] == before and lineage["flops_after"] == after
    assert len(calls) == 2 and [r["flops_reduction_goal"] for r in lineage["rounds"]] == [0.25, 0.5]
    assert model(x).logits.shape == (1, 3) and model.backbone.blocks[-1][0].out_channels == 64  # features kept


def test_transformer_prunes_feed_forward_neurons_not_attention():
    model = _model("tiny:bert")
    x = {"input_ids": torch.randint(5, 60, (1, 12)), "attention_mask": torch.ones(1, 12, dtype=torch.long)}
    lineage = prune_channels(model, x, 0.2, steps=1)
    layer = model.backbone.model.encoder.layer[0]
    assert layer.intermediate.dense.out_features < 64 and layer.output.dense.in_features < 64
    assert layer.attention.self.query.out_features == 32 and lineage["flops_reduction"] >= 0.2
    # the recorded architecture rebuilds the same model from a fresh one
    fresh = _model("tiny:bert")
    apply_architecture(fresh, lineage["architecture"], {k: tuple(v.shape) for k, v in model.state_dict().items()})
    fresh.load_state_dict(model.state_dict(), strict=True)
    torch.testing.assert_close(fresh(x).logits, model(x).logits)


def test_kept_layers_keep_their_channels_and_the_rest_reaches_the_target():
    model, x = _model(), torch.randn(1, 3, 32, 32)
    lineage = prune_channels(model, x, 0.3, steps=1, keep=["blocks.0.*"])
    assert model.backbone.blocks[0][0].out_channels == 16 and model.backbone.blocks[1][0].out_channels < 32
    assert lineage["flops_reduction"] >= 0.3 and lineage["kept"] == ["blocks.0.*"]


def test_batchnorm_recalibration_reestimates_the_statistics_on_the_given_inputs(tiny_bundles):
    est = headstart.load(tiny_bundles["img"], device="cpu")
    data = est._as_data(str(tiny_bundles["img"].parent / "train"))
    bn = est.model_.backbone.blocks[0][1]
    bn.running_mean.fill_(5.0)
    assert recalibrate_batchnorm(est.model_, data) == 3
    assert bn.running_mean.abs().max() < 5.0 and not est.model_.training


def test_prune_bundle_records_the_recalibration_inputs(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "r", "channels", 0.3, steps=1, recover_steps=0,
                       recalibrate=20)
    step = json.loads((out / "headstart.json").read_text())["compression"]["steps"][-1]
    assert step["recovery"]["batchnorm_recalibration_inputs"] == 20


def test_a_keep_pattern_that_matches_no_layer_is_refused():
    with pytest.raises(ValueError, match="matches no layer"):
        prune_channels(_model(), torch.randn(1, 3, 32, 32), 0.3, steps=1, keep=["blocks.9.*"])


def test_the_channel_importance_is_chosen_and_recorded():
    model, x = _model(), torch.randn(1, 3, 32, 32)
    lineage = prune_channels(model, x, 0.3, steps=1, importance="bn_scale")
    assert lineage["importance"] == "BatchNorm scale (|gamma|) of each channel group"
    with pytest.raises(ValueError, match="unknown channel importance 'taylor2'"):
        prune_channels(_model(), x, 0.3, steps=1, importance="taylor2")


def test_distilled_recovery_keeps_the_teacher_logits_in_the_given_cache(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "kd", "channels", 0.3, steps=1, recover_steps=1,
                       distill=True, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "teacher-logits").glob("*.safetensors"))) == 1
    assert len(headstart.load(out).predict(str(train))) == 36


@pytest.mark.filterwarnings("ignore::headstart.adaptation.reference.InputShiftWarning")  # pruning moved the features
def test_pruned_bundle_loads_without_the_original_and_predicts_the_same(tiny_bundles, tmp_path):
    source = shutil.copytree(tiny_bundles["img"], tmp_path / "source")
    test = tiny_bundles["img"].parent / "train"
    est = headstart.load(source)
    lineage = prune_channels(est.model_, example_inputs(est.model_, est._as_data(str(test))), 0.5, steps=1)
    expected = est.decision_function(str(test))
    out = save_compressed(est, tmp_path / "pruned", lineage, source, reference=est._as_data(str(test)))
    shutil.rmtree(source)  # the original weights are gone
    again = headstart.load(out)
    np.testing.assert_allclose(again.decision_function(str(test)), expected, atol=1e-5)
    meta = json.loads((out / "headstart.json").read_text())
    assert meta["compression"]["architecture"] and meta["compression"]["steps"][0]["flops_reduction"] >= 0.5
    assert "## Compression" in (out / "README.md").read_text()


def test_prune_bundle_recovers_on_the_training_data_and_records_lineage(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "p", "channels", 0.3, steps=2, recover_steps=2)
    meta = json.loads((out / "headstart.json").read_text())
    step = meta["compression"]["steps"][-1]
    assert [r["recovery_epochs"] >= 1 for r in step["rounds"]] == [True, True]
    assert step["recovery"]["optimizer_steps_per_round"] == 2 and "before_compression" in meta["metrics"]
    assert len(headstart.load(out).predict(str(train))) == 36


def test_the_last_round_recovers_with_final_recover_and_the_others_with_recover():
    model, x = _model(), torch.randn(1, 3, 32, 32)
    calls = []
    prune_channels(model, x, 0.3, steps=3, recover=lambda m: calls.append("round") or [{}],
                   final_recover=lambda m: calls.append("final") or [{}])
    assert calls == ["round", "round", "final"]


@pytest.mark.filterwarnings("ignore::headstart.adaptation.reference.InputShiftWarning")  # recovery moved the features
def test_a_long_recovery_takes_every_asked_step_past_the_epoch_cap(tiny_bundles):
    est = headstart.load(tiny_bundles["img"], device="cpu")
    data = est._as_data(str(tiny_bundles["img"].parent / "train"))
    steps = []
    # 36 images at batch 32: 2 steps an epoch; the fine-tune's default cap of 60 epochs would stop at 120
    recovery(est, data, steps=130, on_step=lambda rec: steps.append(rec["global_step"]))(est.model_)
    assert steps == list(range(1, 131))


def test_prune_bundle_gives_the_last_round_final_recover_steps(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "f", "channels", 0.3, steps=2, recover_steps=1,
                       final_recover_steps=6)
    step = json.loads((out / "headstart.json").read_text())["compression"]["steps"][-1]
    # 36 images at batch 32 (2 steps an epoch): 1 step is 1 epoch, 6 steps are 3
    assert [r["recovery_epochs"] for r in step["rounds"]] == [1, 3]
    assert step["recovery"]["final_round_optimizer_steps"] == 6 and step["recovery"]["optimizer_steps_per_round"] == 1


def test_distilled_recovery_records_its_settings_in_the_lineage(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "kd", "channels", 0.3, steps=1, recover_steps=2,
                       distill=True, unlabeled=str(train), temperature=3.0, alpha=0.7, layer_decay=1.0)
    recovery = json.loads((out / "headstart.json").read_text())["compression"]["steps"][-1]["recovery"]
    assert recovery["distillation"] | {"teacher_inputs": 0, "teacher_runs": 0} == {
        "teacher": "the unpruned bundle", "temperature": 3.0, "alpha": 0.7, "teacher_inputs": 0, "teacher_runs": 0,
        "unlabeled_inputs": 36}
    assert recovery["layer_decay"] == 1.0 and len(headstart.load(out).predict(str(train))) == 36


@pytest.mark.filterwarnings("ignore::headstart.adaptation.reference.InputShiftWarning")  # recovery moved the features
def test_distilled_recovery_follows_the_teacher_outputs_computed_once(tiny_bundles):
    est = headstart.load(tiny_bundles["img"], device="cpu")
    data = est._as_data(str(tiny_bundles["img"].parent / "train"))
    calls = []

    def predict(d: LabeledData) -> np.ndarray:  # a teacher sure of the last class for every input
        calls.append(len(d))
        return np.tile(np.r_[np.zeros(len(est.classes_) - 1), 8.0], (len(d), 1))
    teacher = TeacherLogits(predict, est.classes_.tolist())
    teacher(data)
    run = recovery(est, data, steps=8, lr=1e-2, teacher=teacher, unlabeled=data.subset(range(10)), alpha=1.0,
                   layer_decay=1.0)
    run(est.model_)
    run(est.model_)
    assert calls == [36]  # the transfer set repeats labeled inputs: no second teacher run
    assert (est.predict(data) == est.classes_[-1]).mean() > 0.9


def test_unlabeled_inputs_without_distillation_are_refused(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    with pytest.raises(ValueError, match="only through distillation"):
        prune_bundle(tiny_bundles["img"], str(train), tmp_path / "x", recover_steps=0, unlabeled=str(train))


def test_magnitude_pruning_is_permanent(tmp_path):
    model = _model()
    lineage = prune_magnitude(model, 0.6, steps=2)
    state = model.state_dict()
    assert not [k for k in state if k.endswith(("weight_orig", "weight_mask"))]
    assert not any(m._forward_pre_hooks for m in model.modules())
    assert lineage["sparsity"] == pytest.approx(0.6, abs=0.01) and len(lineage["rounds"]) == 2
    convs = [m.weight for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    zeros = sum(int((w == 0).sum()) for w in convs) / sum(w.numel() for w in convs)
    assert zeros == pytest.approx(0.6, abs=0.01)


def test_magnitude_pruned_bundle_saves_plain_weights(tiny_bundles, tmp_path):
    train = tiny_bundles["img"].parent / "train"
    out = prune_bundle(tiny_bundles["img"], str(train), tmp_path / "s", "magnitude", 0.5, steps=1, recover_steps=1)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert "backbone.blocks.0.0.weight" in keys and not [k for k in keys if "_orig" in k or "_mask" in k]


@pytest.mark.parametrize("kwargs, match", [({"target": 1.5}, "fraction between 0 and 1"),
                                            ({"steps": 0}, "steps must be at least 1"),
                                            ({"method": "heads"}, "unknown pruning method 'heads'")])
def test_bad_settings_are_refused(tiny_bundles, tmp_path, kwargs, match):
    train = tiny_bundles["img"].parent / "train"
    with pytest.raises(ValueError, match=match):
        prune_bundle(tiny_bundles["img"], str(train), tmp_path / "x", **{"recover_steps": 0, **kwargs})


def test_a_bundle_of_another_architecture_is_refused():
    with pytest.raises(ValueError, match="does not have"):
        apply_architecture(_model(), {"backbone.nope": {"out_channels": 3}}, {})
