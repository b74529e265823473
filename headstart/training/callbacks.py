"""Epoch-end callbacks: early stopping with best-weights restore, per-epoch checkpoints."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from headstart.training.checkpoint import save_checkpoint


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

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class Checkpointer:
    """Write a checkpoint after each epoch (model, optimizer, scheduler, strategy state)."""

    def __init__(self, directory: str | Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        self.directory, self.optimizer, self.scheduler = Path(directory), optimizer, scheduler

    def __call__(self, epoch: int, log: dict[str, Any], model: torch.nn.Module,
                 extra: dict[str, Any]) -> None:
        save_checkpoint(self.directory, epoch, model, self.optimizer, self.scheduler,
                        {**extra, "log": log})
