"""Classification loss as an object: the loop stays generic (distillation, domain adaptation
are other tasks, not other loops)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationTask:
    def __init__(self, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> None:
        self.label_smoothing = label_smoothing
        self.class_weights = class_weights

    def __call__(self, model: nn.Module, batch: tuple[Any, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        logits = model(inputs)  # (N, C)
        w = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = F.cross_entropy(logits.float(), targets, weight=w, label_smoothing=self.label_smoothing)
        return {"loss": loss, "logits": logits}
