"""Strategy contract (scikit-learn rule): ``__init__`` only stores its arguments.

A strategy says which parameters train, at which learning rates (``param_groups``), which
backbone layer groups train in each epoch (``trainable_groups``: the trainer applies it through
``set_trainable`` once per change, never every step or epoch, so PEFT's or a user's freezing is
not undone), structural changes made once before training (``prepare``: LoRA's adapters), the BatchNorm
mode of frozen parts (``set_modes``), and its run settings (``settings``: epochs, batch size,
warmup, clipping, patience, augmentation). The one trainer (``headstart.training``) does the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from headstart._params import Params


@dataclass
class RunSettings:
    epochs: int
    batch_size: int
    warmup: float = 0.1  # fraction of the steps with a linear warmup, then cosine decay
    grad_clip: float | None = 1.0
    patience: int = 5  # early stopping, when a validation split exists
    augment: bool = False
    checkpoint: bool = True  # checkpoints after each epoch (and every N steps when asked)
    desc: str = "train"
    log_epochs: bool = True
    max_steps: int | None = None  # an exact budget: training stops after this many optimizer steps


class Strategy(Params):
    name: ClassVar[str] = ""
    frozen_backbone: ClassVar[bool] = False  # True: the head trains on cached features
    init_head: str = "random"  # "probe": the head is fitted on cached features before training

    def validate(self, n_groups: int) -> None:
        """Refuse bad settings before any compute."""

    def settings(self, n_train: int, batch_size: int) -> RunSettings:
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        raise NotImplementedError

    def trainable_groups(self, epoch: int, n_groups: int) -> set[int]:
        """Backbone layer groups that train during ``epoch`` (all of them by default)."""
        return set(range(n_groups))

    def prepare(self, model: nn.Module) -> str:
        """Change the model's structure once before training (LoRA injects its adapters) and say
        what was done ("" when nothing: the default)."""
        return ""

    def set_trainable(self, backbone: nn.Module, groups: set[int]) -> None:
        """Set ``requires_grad`` of the backbone's parameters: those of the layer ``groups`` train.
        The trainer calls it once per change of ``trainable_groups``, never every step."""
        for i, params in enumerate(backbone.layer_groups()):
            for p in params:
                p.requires_grad_(i in groups)

    def set_modes(self, model: nn.Module) -> None:
        """Module modes after ``model.train()`` each epoch (e.g. BatchNorm of frozen parts in eval)."""


def decay_groups(params: list[nn.Parameter], lr: float, weight_decay: float, group: int) -> list[dict[str, Any]]:
    """AdamW groups for ``params`` at ``lr``: no weight decay on biases and norm weights."""
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [g for g in ({"params": decay, "lr": lr, "weight_decay": weight_decay, "group": group},
                        {"params": no_decay, "lr": lr, "weight_decay": 0.0, "group": group}) if g["params"]]
