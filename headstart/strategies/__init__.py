"""Strategies: what trains and how fast. One file each, registered by name."""
from __future__ import annotations

from typing import Any

from headstart._registry import Registry
from headstart.strategies._base import RunSettings, Strategy
from headstart.strategies.auto import choose
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning
from headstart.strategies.gradual_unfreezing import GradualUnfreezing
from headstart.strategies.lora import LoRA

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (FeatureExtraction, FineTuning, GradualUnfreezing, LoRA):
    STRATEGIES.register(_cls.name)(_cls)


def build_strategy(strategy: "str | Strategy", **params: Any) -> Strategy:
    """A Strategy from an instance (its parameters updated by ``params``) or a registered name."""
    if isinstance(strategy, Strategy):
        return strategy.set_params(**params) if params else strategy
    return STRATEGIES.get(strategy)(**params)


__all__ = ["STRATEGIES", "LoRA", "RunSettings", "Strategy", "build_strategy", "choose"]
