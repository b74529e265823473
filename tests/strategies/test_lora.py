"""LoRA through PEFT: targets per backbone family, what trains, frozen base, bundle round trip
(adapter + head), merge parity. Tiny random models only."""
import copy
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file

import headstart
from headstart.api import Headstart
from headstart.backbones import build_backbone
from headstart.backbones.local import save_local
from headstart.backbones.timm import TimmBackbone
from headstart.backbones.tiny import tiny_bert
from headstart.strategies.lora import LoRA, base_state, default_targets, has_lora, is_adapter_key
from tests.conftest import write_text_csv

QUICK = {"epochs": 3, "batch_size": 8, "lr": 5e-3}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A tiny BERT saved with its weights: ``local:DIR`` rebuilds the same "pretrained" base."""
    torch.manual_seed(0)
    return save_local(tiny_bert(), tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """((train texts, labels), (test texts, labels)): 40 and 20 generated reviews."""
    import pandas as pd

    d = tmp_path_factory.mktemp("texts")
    train, test = (pd.read_csv(write_text_csv(d / f"{name}.csv", n, seed))
                   for name, n, seed in (("train", 40, 0), ("test", 20, 1)))
    return (train.text.tolist(), train.label.tolist()), (test.text.tolist(), test.label.tolist())


class WatchedLoRA(LoRA):
    """LoRA that keeps the model it prepared, so a test can look at it during training."""

    def prepare(self, model):
        self.model = model
        return super().prepare(model)


@pytest.fixture(scope="module")
def fitted(bert_dir, texts, tmp_path_factory):
    """One LoRA fit on the saved tiny BERT (r=4): the estimator, its strategy, the parameters that
    required grad at each step, and its bundle."""
    strategy, seen = WatchedLoRA(r=4, **QUICK), []

    def watch(info):
        seen.append({n: p.numel() for n, p in strategy.model.named_parameters() if p.requires_grad})

    (x, y), test = texts
    est = Headstart(backbone=f"local:{bert_dir}", strategy=strategy, final_fit="split", verbose=False,
                    run={"on_step": watch}).fit(x, y, test=test)
    return est, strategy, seen, est.save(tmp_path_factory.mktemp("bundle") / "b")


def test_default_targets_follow_the_backbone_family():
    assert default_targets(tiny_bert())[1] == ["query", "key", "value", "attention.output.dense"]
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                            depth=2, num_heads=2)
    assert default_targets(TimmBackbone("vit", pretrained=False, model=vit))[1] == ["attn.qkv", "attn.proj"]
    cnn = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    assert default_targets(cnn)[1] == ["conv_pw", "conv_pwl"]
    assert default_targets(build_backbone("tiny:cnn"))[1] == ["blocks.0.0", "blocks.1.0", "blocks.2.0"]


def test_a_fresh_adapter_leaves_a_vit_s_outputs_unchanged():
    """LoRA's B starts at zero: injecting it into a timm ViT changes no output."""
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                            depth=2, num_heads=2)
    bb = TimmBackbone("vit", pretrained=False, model=vit).eval()
    bb.set_pretrained_cfg(replace(bb.pretrained_cfg, input_size=32))
    x = torch.randn(2, 3, 32, 32)
    before = bb(x)
    model = headstart.model.TransferModel(bb, torch.nn.Linear(bb.num_features, 2))
    LoRA(r=4).prepare(model)
    assert has_lora(bb) and torch.equal(bb.eval()(x), before)


def test_unknown_target_modules_are_refused_with_the_backbone_named():
    model = headstart.model.TransferModel(tiny_bert(), torch.nn.Linear(32, 2))
    with pytest.raises(ValueError, match="lora on tiny:bert"):
        LoRA(target_modules="no_such_layer").prepare(model)


def test_only_the_adapter_and_the_head_train_at_every_step_as_many_as_peft_reports(fitted, bert_dir):
    from peft import get_peft_model

    _, strategy, seen, _ = fitted
    config, _ = strategy.config(build_backbone(f"local:{bert_dir}"))
    peft_count = get_peft_model(copy.deepcopy(build_backbone(f"local:{bert_dir}").model),
                                config).get_nb_trainable_parameters()[0]
    head = sum(p.numel() for p in strategy.model.head.parameters())
    assert len(seen) == 15 and all(s == seen[0] for s in seen)  # 40 texts, batch 8, 3 epochs; never changed
    assert {n for n in seen[0] if not n.startswith("head.")} == {
        n for n, _ in strategy.model.named_parameters() if is_adapter_key(n)}
    assert sum(seen[0].values()) == peft_count + head and peft_count == 2 * 4 * (4 * 32 + 32 * 4)


def test_frozen_base_weights_are_unchanged_after_fit_and_the_adapter_learned(fitted, bert_dir):
    est = fitted[0]
    base = build_backbone(f"local:{bert_dir}").state_dict()
    got = base_state(est.model_.backbone)
    assert got.keys() == base.keys() and all(torch.equal(got[k], base[k]) for k in base)
    lora_b = [p for n, p in est.model_.backbone.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: it trained


def test_bundle_keeps_adapter_and_head_only_and_loads_to_the_same_predictions(fitted, texts):
    est, _, _, bundle = fitted
    meta = json.loads((bundle / "headstart.json").read_text())
    assert meta["adapter"]["weights"] == "adapter" and meta["adapter"]["config"]["r"] == 4
    saved = load_file(str(bundle / "model.safetensors"))
    assert any(k.startswith("head.") for k in saved)  # the head travels with the adapter
    assert all(is_adapter_key(k) for k in saved if k.startswith("backbone."))
    test_x = texts[1][0]
    assert np.array_equal(headstart.load(bundle).predict_proba(test_x), est.predict_proba(test_x))


def test_bundle_of_a_random_base_keeps_every_weight_and_loads_exactly(texts, tmp_path):
    (x, y), (test_x, test_y) = texts
    est = Headstart(backbone="tiny:bert", strategy="lora", strategy_params={**QUICK, "epochs": 1},
                    final_fit="split", verbose=False).fit(x, y, test=(test_x, test_y))
    est.save(tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "headstart.json").read_text())
    assert meta["adapter"]["weights"] == "full"  # tiny:bert is random: its base cannot be rebuilt
    assert np.array_equal(headstart.load(tmp_path / "b").predict_proba(test_x), est.predict_proba(test_x))


def test_loading_an_adapter_onto_other_base_weights_is_refused(fitted, tmp_path):
    torch.manual_seed(1)
    other = save_local(tiny_bert(), tmp_path / "other-base")
    shutil.copytree(fitted[3], tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "headstart.json").read_text())
    meta["backbone"]["spec"] = f"local:{other}"  # the base moved, and its weights are not the same
    (tmp_path / "b" / "headstart.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not those this LoRA adapter was trained on"):
        headstart.load(tmp_path / "b")


def test_merge_folds_the_adapter_in_with_tiny_logit_change(fitted, texts, tmp_path):
    est = headstart.load(fitted[3])  # a loaded bundle merges like the fitted estimator
    test_x = texts[1][0]
    proba = est.predict_proba(test_x)
    diff = est.merge_lora(test_x)
    assert diff < 1e-4 and not has_lora(est.model_)
    assert np.array_equal(est.predict_proba(test_x).argmax(1), proba.argmax(1))
    est.save(tmp_path / "merged")  # a plain bundle now
    assert "adapter" not in json.loads((tmp_path / "merged" / "headstart.json").read_text())
    np.testing.assert_array_equal(headstart.load(tmp_path / "merged").predict_proba(test_x),
                                  est.predict_proba(test_x))
    with pytest.raises(ValueError, match="no LoRA adapter"):
        est.merge_lora(test_x)
