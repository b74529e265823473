"""``linear``: dropout then one linear layer — the linear probe."""
from __future__ import annotations

import torch
from torch import nn

from headstart.heads._base import Head


class LinearHead(Head):
    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.dropout = nn.Dropout(float(self.params.get("dropout", 0.0)))
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def classifier(self) -> nn.Linear:
        return self.fc

    def input_layer(self) -> nn.Linear:
        return self.fc
