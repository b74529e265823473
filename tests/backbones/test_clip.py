"""CLIP-style dual encoders (headstart.backbones.clip) on tiny random checkpoints: no CLIP
weights ship offline, so these check the mechanics (shapes, preprocessing read from the
checkpoint, the text tower's space, save/rebuild), never what real weights would score."""
import pytest
import torch

from headstart.backbones import DualEncoder, build_backbone
from headstart.backbones.clip import split_open_clip
from headstart.testing.checks import check_backbone
from headstart.testing.clip import tiny_clip_dir, tiny_open_clip_dir


@pytest.mark.parametrize("kind, dim, mean", [("clip", 16, 0.48145466), ("siglip", 32, 0.5)])
def test_hf_clip_and_siglip_are_image_backbones_with_a_text_tower_in_the_same_space(tmp_path, kind, dim, mean):
    bb = build_backbone(f"hf:{tiny_clip_dir(tmp_path / kind, kind)}")
    assert isinstance(bb, DualEncoder) and bb.modality == "image" and bb.num_features == dim
    cfg = bb.pretrained_cfg
    assert (cfg.input_size, cfg.interpolation, cfg.fixed_input_size) == (32, "bicubic", True)
    assert cfg.mean[0] == pytest.approx(mean)  # the checkpoint's image processor, not a default
    assert bb.encode_text(["a photo of a red square.", "blue"]).shape == (2, dim)
    check_backbone(bb)  # image features (2, dim), every parameter in one group, save/rebuild offline


def test_the_text_tower_does_not_train_with_the_image_features(tmp_path):
    bb = build_backbone(f"hf:{tiny_clip_dir(tmp_path / 'c')}")
    text = [p for n, p in bb.model.named_parameters() if n.startswith("text_model.")]
    assert text and not any(p.requires_grad for p in text)
    bb.forward_features(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in text)
    assert bb.model.vision_model.embeddings.patch_embedding.weight.grad is not None


def test_open_clip_specs_name_an_architecture_and_its_weights():
    assert split_open_clip("ViT-B-32/laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert split_open_clip("local-dir:/m/x") == ("local-dir:/m/x", None)
    with pytest.raises(ValueError, match=r"open_clip:ViT-B-32/TAG \(tags: openai"):
        build_backbone("open_clip:ViT-B-32")  # no tag: which weights is ambiguous, refused before any download


def test_an_open_clip_model_is_a_dual_encoder_that_rebuilds_from_its_own_folder(tmp_path):
    bb = build_backbone(f"scratch:open_clip:local-dir:{tiny_open_clip_dir(tmp_path / 'oc')}")
    assert isinstance(bb, DualEncoder) and bb.num_features == 16 and bb.pretrained_cfg.input_size == 32
    assert bb.encode_text(["a photo of a cat.", "dog", "bird"]).shape == (3, 16)
    check_backbone(bb)  # the rebuild reads open_clip_config.json saved beside backbone.json


def test_fit_puts_a_probe_on_a_clip_image_tower_and_the_bundle_reloads_it(image_data, tmp_path):
    import headstart

    est = headstart.Headstart(backbone=f"hf:{tiny_clip_dir(tmp_path / 'c')}", strategy="feature_extraction",
                              runtime={"cache_dir": tmp_path / "cache"}, verbose=False).fit(image_data[0])
    assert est.model_.backbone.num_features == 16  # the projected image embeddings
    est.save(tmp_path / "b")
    again = headstart.load(tmp_path / "b")
    assert again.predict(image_data[1]).tolist() == est.predict(image_data[1]).tolist()
