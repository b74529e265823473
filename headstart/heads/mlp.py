"""``mlp``: hidden layers (ReLU or GELU, dropout) then a linear classifier. The tutorials'
"global pooling + Dense(1024, relu) + softmax" is ``mlp`` with ``hidden=[1024]``."""
from __future__ import annotations

import torch
from torch import nn

from headstart.heads._base import Head

_ACT = {"relu": nn.ReLU, "gelu": nn.GELU}


class MLPHead(Head):
    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        hidden = [int(h) for h in self.params.get("hidden", [1024])]
        p = float(self.params.get("dropout", 0.2))
        act = _ACT[self.params.get("activation", "relu")]
        layers: list[nn.Module] = []
        width = self.num_features
        for h in hidden:
            layers += [nn.Dropout(p), nn.Linear(width, h), act()]
            width = h
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(p)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.body(features)))

    def classifier(self) -> nn.Linear:
        return self.fc

    def input_layer(self) -> nn.Linear:
        return next((m for m in self.body if isinstance(m, nn.Linear)), self.fc)
