"""``feature_extraction``: the backbone stays frozen; its features are computed once (disk
cache) and only the head trains, on the cached features. A second fit with another head or
other hyper-parameters never runs the backbone.

``solver='auto'``: the task's closed-form shortcut when it has one for this head (a logistic
regression probe for a linear classification head, prototypes, ridge for regression, one
logistic regression per label for multi-label); otherwise the head trains with AdamW for
``steps`` steps. ``'lbfgs'`` insists on the shortcut, ``'adamw'`` always trains."""
from __future__ import annotations

from typing import Any

from torch import nn

from headstart.strategies._base import RunSettings, Strategy

SOLVERS = ("auto", "lbfgs", "adamw")


def steps_to_epochs(n_train: int, batch_size: int, steps: int, min_epochs: int = 1,
                    max_epochs: int = 200) -> int:
    """Epochs needed for about ``steps`` optimizer steps at this dataset size."""
    per_epoch = max(1, -(-n_train // batch_size))
    return int(min(max_epochs, max(min_epochs, -(-steps // per_epoch))))


class FeatureExtraction(Strategy):
    name = "feature_extraction"
    frozen_backbone = True

    def __init__(self, solver: str = "auto", C: float | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-2, steps: int = 300, batch_size: int = 128) -> None:
        self.solver = solver
        self.C = C
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = steps
        self.batch_size = batch_size

    def validate(self, n_groups: int) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be auto, lbfgs or adamw, got {self.solver!r}")

    def settings(self, n_train: int, batch_size: int) -> RunSettings:
        bs = self.batch_size
        return RunSettings(epochs=steps_to_epochs(n_train, bs, self.steps, min_epochs=5, max_epochs=500),
                           batch_size=bs, warmup=0.05, grad_clip=None, patience=10, checkpoint=False,
                           desc="head", log_epochs=False)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(model.head.parameters()), "lr": self.lr, "weight_decay": self.weight_decay,
                 "group": 0}]

    def trainable_groups(self, epoch: int, n_groups: int) -> set[int]:
        return set()
