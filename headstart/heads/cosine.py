"""``cosine``: a linear layer on L2-normalised features — scores are scaled cosine similarities
to one vector per class (plus a per-class offset).

Zero-shot classification writes the class vectors from embedded label descriptions ("This review
is positive."), the offsets from calibration on unlabeled inputs, and the scale (a temperature);
a probe fitted on normalised features fits in the same layer. Trained with the loss like any
head otherwise (the layer starts random).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from headstart.heads._base import Head


class CosineHead(Head):
    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        return self.fc(F.normalize(features.float(), dim=-1).to(features.dtype))

    def classifier(self) -> nn.Linear:
        return self.fc

    def set_class_vectors(self, vectors: torch.Tensor, scale: float = 1.0,
                          offsets: torch.Tensor | None = None) -> None:
        """Logits = scale * cos(features, vectors[c]) + offsets[c]; ``vectors`` (C, D)."""
        if vectors.shape != self.fc.weight.shape:
            raise ValueError(f"class vectors {tuple(vectors.shape)}, expected {tuple(self.fc.weight.shape)}")
        with torch.no_grad():
            self.fc.weight.copy_(scale * F.normalize(vectors.float(), dim=-1))
            self.fc.bias.copy_(offsets.float() if offsets is not None else torch.zeros(self.num_classes))
