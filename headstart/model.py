"""TransferModel: a backbone and a head, the one module every strategy trains."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from headstart.backbones._base import Backbone
from headstart.heads._base import Head


class TransferModel(nn.Module):
    def __init__(self, backbone: Backbone, head: Head) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, batch: Any) -> torch.Tensor:  # -> (N, C) logits
        return self.head(self.backbone.forward_features(batch))
