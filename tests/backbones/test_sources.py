"""Every backbone source meets the contract (generated over the sources that build offline)."""
import numpy as np
import pytest
import torch

from headstart.backbones import SOURCES, build_backbone
from headstart.testing.checks import check_backbone

# one spec per registered source, each buildable with no network (random init where needed)
OFFLINE_SPECS = {
    "tiny": ["tiny:cnn", "tiny:bert"],
    "counting": ["counting:cnn"],  # the test-only source from conftest
    "fixed": ["fixed:bert"],  # the test-only source from conftest (tiny:bert, the same weights at every build)
    "timm": ["scratch:timm:resnet18", "scratch:timm:vit_tiny_patch16_224"],
    "torchvision": ["scratch:torchvision:resnet18", "scratch:torchvision:mobilenet_v3_small"],
    "tfidf": ["tfidf:1-2", "tfidf:1-1"],
    "ts": ["ts:fcn_tiny", "scratch:ts:fcn"],
    "rocket": ["rocket:64", "rocket:50-3"],
    "aisfx": ["scratch:aisfx:cnn"],
    "logmel": ["logmel:80", "logmel:40"],
    # its smallest built-in architecture (ViT-S-32-alt, 43M parameters) takes minutes here: the same
    # check_backbone runs on a generated two-layer model in tests/backbones/test_clip.py
    "open_clip": [],
}


def test_every_source_has_a_conformance_case():
    assert set(SOURCES.list()) - {"hf", "local"} <= set(OFFLINE_SPECS)


@pytest.mark.parametrize("spec", [s for specs in OFFLINE_SPECS.values() for s in specs])
def test_backbone_contract(spec):
    bb = build_backbone(spec)
    if bb.modality == "text":  # learns from the training texts (TF-IDF); a no-op for pretrained ones
        bb.adapt_to(["a small test sentence", "another one, longer than the first", "the sentence"])
    if bb.modality == "timeseries":  # the channel count (and ROCKET's kernels) come from the data
        bb.adapt_to([np.zeros((2, 40), np.float32), np.zeros((2, 31), np.float32)])
    check_backbone(bb)


def test_scratch_prefix_keeps_architecture_and_drops_weights():
    torch.manual_seed(0)
    a = build_backbone("scratch:tiny:cnn")
    assert a.spec == "scratch:tiny:cnn" and "random" in a.pretrained_cfg.license
    assert a.num_features == build_backbone("tiny:cnn").num_features


def test_unknown_spec_names_the_choices():
    with pytest.raises(KeyError, match="catalog alias"):
        build_backbone("no_such_model")
    with pytest.raises(KeyError, match="backbone source"):
        build_backbone("nosource:thing")


def test_hf_layer_groups_are_embeddings_blocks_then_rest():
    bb = build_backbone("tiny:bert")
    groups = bb.layer_groups()
    emb = {id(p) for p in bb.model.embeddings.parameters()}
    assert {id(p) for p in groups[0]} == emb
    assert len(groups) == 1 + bb.model.config.num_hidden_layers


def test_hf_cls_pooling_differs_from_mean():
    from headstart.backbones.transformers import HFBackbone
    from headstart.testing.checks import example_batch

    bb = build_backbone("tiny:bert").eval()
    cls = HFBackbone(bb.model, bb.tokenizer(), spec="x", pooling="cls", max_length=64).eval()
    batch = example_batch(bb)
    with torch.no_grad():
        assert not torch.allclose(bb(batch), cls(batch))


def test_local_missing_files_error_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        build_backbone(f"local:{tmp_path}")
