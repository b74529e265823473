"""Pretrained feature extractors, addressed by spec strings with a source prefix.

``timm:convnext_tiny.fb_in1k``, ``hf:bert-base-uncased``, ``torchvision:resnet50``,
``local:/path``, ``open_clip:ViT-B-32/laion2b_s34b_b79k`` (a CLIP-style dual encoder; ``hf:`` CLIP
and SigLIP ids are dual encoders too, see ``clip``), ``tiny:cnn``, ``tfidf:1-2`` (the classic text baseline, learned from the data),
``ts:fcn`` (a 1-D CNN for time series that headstart pretrains), ``rocket:10000`` (random
convolutional kernels, the time-series baseline), ``aisfx:cnn`` (a sound-effects CNN),
a catalog alias (``efficientnet_lite0``, ``minilm``), and
``scratch:<any of those>`` for the same architecture randomly initialised.
"""
from __future__ import annotations

from headstart.backbones import (aisfx, clip, local, logmel, rocket, tfidf, timm, tiny, torchvision, transformers,
                                 ts_pretrain)
from headstart.backbones._base import IMAGE, TEXT, Backbone, PretrainedCfg, split_source
from headstart.backbones._sources import SOURCES
from headstart.backbones.clip import DualEncoder
from headstart.backbones.catalog import CATALOG, available_offline, build_alias

SOURCES.register("timm")(timm.build)
SOURCES.register("hf")(transformers.build)
SOURCES.register("torchvision")(torchvision.build)
SOURCES.register("local")(local.build)
SOURCES.register("tiny")(tiny.build)
SOURCES.register("tfidf")(tfidf.build)
SOURCES.register("ts")(ts_pretrain.build)
SOURCES.register("rocket")(rocket.build)
SOURCES.register("logmel")(logmel.build)
SOURCES.register("aisfx")(aisfx.build)
SOURCES.register("open_clip")(clip.build)


def build_backbone(spec: str, pretrained: bool = True) -> Backbone:
    """Build a backbone from its spec. ``scratch:`` keeps the architecture and drops the weights."""
    source, name = split_source(spec)
    if source == "scratch":
        bb = build_backbone(name, pretrained=False)
        bb.spec = spec
        bb.pretrained_cfg.license = "none (random initialisation)"
        return bb
    if not source:
        if name not in CATALOG:
            raise KeyError(f"unknown backbone {spec!r}: use a catalog alias ({', '.join(CATALOG)}) "
                           f"or a source prefix ({', '.join(SOURCES.list())}:NAME)")
        return build_alias(name, pretrained=pretrained, build=build_backbone)
    bb = SOURCES.get(source)(name, pretrained=pretrained)
    bb.spec = spec
    return bb


__all__ = ["IMAGE", "TEXT", "Backbone", "DualEncoder", "PretrainedCfg", "SOURCES", "CATALOG", "build_backbone",
           "available_offline"]
