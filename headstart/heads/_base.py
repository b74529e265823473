"""Head contract: maps pooled features (N, D) to class logits (N, C)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Head(nn.Module):
    """Subclasses build their layers in ``reset(num_classes)``; ``params`` are JSON-able."""

    def __init__(self, num_features: int, num_classes: int, **params: Any) -> None:
        super().__init__()
        self.num_features = num_features
        self.params = params
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        raise NotImplementedError

    def classifier(self) -> nn.Linear:
        """The final linear layer (a linear probe can initialise it)."""
        raise NotImplementedError

    def input_layer(self) -> nn.Linear | None:
        """The first linear layer applied to the features (None: not a linear map first).
        Heads that name it can train on standardised, span-reduced cached features and have
        the transformation folded back into this layer."""
        return None
