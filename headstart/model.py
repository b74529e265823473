"""TransferModel: a backbone and a head, the one module every strategy trains.

It returns a ``ModelOutput`` (pooled ``features`` and the head's ``logits``), so a task can put a
loss on the features (domain adaptation, contrastive tuning) without reaching into a
DDP-wrapped module. Modules a task owns (a discriminator, a projection head) live in
``task_modules``: the trainer optimises, prepares and checkpoints them with the model, and the
bundle saves them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from headstart.backbones._base import Backbone
from headstart.heads._base import Head


@dataclass
class ModelOutput:
    features: torch.Tensor  # (N, D) pooled
    logits: torch.Tensor  # (N, C) the head's outputs (class logits, standardised values, ...)


class TransferModel(nn.Module):
    def __init__(self, backbone: Backbone, head: Head, task_modules: dict[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.task_modules = nn.ModuleDict(task_modules or {})

    def forward(self, inputs: Any) -> ModelOutput:
        feats = self.backbone.forward_features(inputs)  # (N, D)
        return ModelOutput(feats, self.head(feats))


class HeadModel(nn.Module):
    """The head alone, on cached features: what feature extraction trains (same output)."""

    def __init__(self, head: Head, task_modules: nn.ModuleDict | None = None) -> None:
        super().__init__()
        self.head = head
        self.task_modules = task_modules if task_modules is not None else nn.ModuleDict()

    def forward(self, feats: torch.Tensor) -> ModelOutput:  # (N, D) -> logits (N, C)
        return ModelOutput(feats, self.head(feats))
