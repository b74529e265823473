"""Tiny randomly initialised CLIP-style dual encoders for tests (no CLIP weights ship offline):
a transformers CLIP or SigLIP checkpoint folder (``hf:`` / ``local:`` loads it) and an open_clip
``local-dir:`` folder, each with two-layer towers of width 32 reading 32x32 images."""
from __future__ import annotations

import json
from pathlib import Path

_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "max_position_embeddings": 64}
_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
           "image_size": 32, "patch_size": 8}


def tiny_clip_dir(directory: Path, kind: str = "clip", seed: int = 0) -> Path:
    """A random CLIP (``kind="clip"``, 16-d projections) or SigLIP (``"siglip"``, 32-d) checkpoint
    with the character-level tokenizer of ``tiny:bert`` and the model's own image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, SiglipConfig, SiglipImageProcessor, SiglipModel

    from headstart.backbones.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    # the tokenizer's [CLS] / [SEP] / [PAD] ids (CLIP pools the text at its end-of-text token)
    text = {**_TEXT, "vocab_size": len(tok), "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    torch.manual_seed(seed)
    if kind == "clip":
        CLIPModel(CLIPConfig(text_config=text, vision_config=_VISION, projection_dim=16)).save_pretrained(directory)
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    elif kind == "siglip":
        SiglipModel(SiglipConfig(text_config=text, vision_config=_VISION)).save_pretrained(directory)
        SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    else:
        raise ValueError(f"kind must be clip or siglip, got {kind!r}")
    tok.save_pretrained(directory)
    return Path(directory)


def tiny_open_clip_dir(directory: Path) -> Path:
    """An open_clip ``local-dir:`` folder holding only ``open_clip_config.json`` (random weights:
    build it with ``scratch:open_clip:local-dir:DIR``, or ``open_clip:local-dir:DIR``, which warns
    that no weights were found)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"model_cfg": {"embed_dim": 16,
                         "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
                         "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}},
           "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic",
                              "resize_mode": "shortest"}}
    (d / "open_clip_config.json").write_text(json.dumps(cfg))
    return d
