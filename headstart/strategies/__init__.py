"""Strategies: what trains and how fast. One file each, registered by name."""
from __future__ import annotations

from typing import Any

from headstart._registry import Registry
from headstart.strategies._base import FitContext, Split, Strategy
from headstart.strategies.auto import Auto, choose
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning
from headstart.strategies.gradual_unfreezing import GradualUnfreezing

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (FeatureExtraction, FineTuning, GradualUnfreezing, Auto):
    STRATEGIES.register(_cls.name)(_cls)


def build_strategy(name: str, **params: Any) -> Strategy:
    return STRATEGIES.get(name)(**params)


__all__ = ["STRATEGIES", "FitContext", "Split", "Strategy", "build_strategy", "choose"]
