"""``local:<directory>`` — a backbone saved on disk, loaded without any network.

Two layouts are read:
- headstart's own: ``backbone.json`` (source, arch, preprocessing) plus optional
  ``backbone.safetensors`` (weights; absent = architecture only, as inside a bundle);
- a plain transformers directory (``config.json`` + weights + tokenizer files).
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_model, save_model

from headstart.backbones._base import Backbone, PretrainedCfg

WEIGHTS = "backbone.safetensors"


def load_local(directory: str | Path, pretrained: bool = True, spec: str | None = None) -> Backbone:
    from headstart.backbones._sources import SOURCES
    from headstart.backbones.transformers import from_name

    d = Path(directory)
    if (d / "backbone.json").is_file():
        cfg = json.loads((d / "backbone.json").read_text())
        if cfg["source"] == "hf":
            bb = from_name(d, pretrained=False, spec=cfg.get("spec"), pooling=cfg.get("pooling", "mean"))
        elif cfg["source"] == "tfidf":
            from headstart.backbones.tfidf import TfidfBackbone

            bb = TfidfBackbone.from_config(cfg)
        elif cfg["source"] == "open_clip":  # its architecture file sits in the same folder
            from headstart.backbones.clip import load_open_clip_dir

            bb = load_open_clip_dir(d)
        else:
            bb = SOURCES.get(cfg["source"])(cfg["arch"], pretrained=False)
        bb.spec = cfg.get("spec") or spec or f"local:{d}"
        bb.set_pretrained_cfg(PretrainedCfg.from_dict(cfg["pretrained_cfg"]))
        if pretrained and (d / WEIGHTS).is_file():
            load_model(bb, str(d / WEIGHTS))
        return bb
    if (d / "config.json").is_file():
        return from_name(d, pretrained=pretrained, spec=spec or f"local:{d}")
    raise FileNotFoundError(
        f"{d}: not a backbone directory (expected backbone.json [+ {WEIGHTS}] or a transformers "
        "config.json with its weights)")


def save_local(backbone: Backbone, directory: str | Path, weights: bool = True) -> Path:
    """Write a backbone so that ``local:<directory>`` rebuilds it offline."""
    d = Path(directory)
    backbone.save_architecture(d)
    if weights:
        save_model(backbone, str(d / WEIGHTS))
    return d


def build(name: str, pretrained: bool = True) -> Backbone:
    return load_local(name, pretrained=pretrained)
