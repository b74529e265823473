"""Epoch-end callbacks: early stopping with best-weights restore."""
from __future__ import annotations

import copy
from typing import Any

import torch


class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` epochs; keep the best weights."""

    def __init__(self, metric: str = "val_accuracy", patience: int = 5, mode: str = "max") -> None:
        self.metric, self.patience, self.mode = metric, patience, mode
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def __call__(self, epoch: int, log: dict[str, Any], model: torch.nn.Module) -> bool:
        value = log.get(self.metric)
        if value is None:
            return False
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch = value, epoch
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        return epoch - self.best_epoch >= self.patience

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
        """JSON state and best weights, for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch}, self.best_state

    def load_state(self, state: dict[str, Any], best_state: dict[str, torch.Tensor] | None) -> None:
        self.best, self.best_epoch, self.best_state = state["best"], state["best_epoch"], best_state

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
