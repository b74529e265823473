"""Classification heads, registered by name."""
from __future__ import annotations

from typing import Any

from headstart._registry import Registry
from headstart.heads._base import Head
from headstart.heads.cosine import CosineHead
from headstart.heads.linear import LinearHead
from headstart.heads.mlp import MLPHead
from headstart.heads.prototype import PrototypeHead

HEADS: Registry[type[Head]] = Registry("head")
HEADS.register("linear")(LinearHead)
HEADS.register("mlp")(MLPHead)
HEADS.register("prototype")(PrototypeHead)
HEADS.register("cosine")(CosineHead)


def build_head(name: str, num_features: int, num_classes: int, **params: Any) -> Head:
    head = HEADS.get(name)(num_features, num_classes, **params)
    head.name = name
    return head


__all__ = ["HEADS", "Head", "build_head"]
