"""``fine_tuning``: train the backbone with the head, in layer groups.

Defaults follow what works at small N (see ANCHORS.md: a naive full fine-tune loses to a
linear probe at N=100): the head starts from a linear probe on cached features (LP-FT, Kumar
et al. 2022, "Fine-Tuning can Distort Pretrained Features"), layer-wise learning-rate decay
(Howard & Ruder 2018; Clark et al. 2020), warmup + cosine, BatchNorm statistics frozen, a step
budget rather than an epoch count, and early stopping when a validation split exists.
"""
from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from headstart.strategies._base import RunSettings, Strategy, decay_groups
from headstart.strategies.feature_extraction import steps_to_epochs


def parse_freeze(spec: str, n_groups: int) -> set[int]:
    """``none`` | ``all`` | ``first:N`` | ``all-but-last:K`` -> indices of frozen groups."""
    s = spec.strip().lower()
    if s == "none":
        return set()
    if s == "all":
        return set(range(n_groups))
    kind, _, num = s.partition(":")
    if not num.isdigit() or kind not in ("first", "all-but-last"):
        raise ValueError(f"freeze must be none, all, first:N or all-but-last:K; got {spec!r}")
    k = int(num)
    if k > n_groups:
        raise ValueError(f"freeze {spec!r}: the backbone has only {n_groups} layer groups")
    return set(range(k)) if kind == "first" else set(range(n_groups - k))


def set_batchnorm_eval(module: nn.Module, trainable_ids: set[int] | None = None) -> None:
    """Put BatchNorm layers in eval mode: all of them (trainable_ids None) or those whose
    parameters are all frozen, so frozen parts keep their pretrained statistics."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            if trainable_ids is None or not any(id(p) in trainable_ids for p in m.parameters()):
                m.eval()


class FineTuning(Strategy):
    name = "fine_tuning"

    def __init__(self, freeze: str = "none", lr: float = 3e-4, head_lr: float | None = None,
                 layer_decay: float = 0.7, weight_decay: float = 0.01, steps: int = 400,
                 epochs: int | None = None, max_epochs: int = 60, batch_size: int | None = None,
                 warmup: float = 0.1, augment: bool = True, init_head: str = "probe", batchnorm: str = "frozen",
                 grad_clip: float = 1.0, patience: int = 5, max_steps: int | None = None) -> None:
        self.freeze = freeze
        self.lr = lr
        self.head_lr = head_lr
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay
        self.steps = steps
        self.epochs = epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.warmup = warmup
        self.augment = augment
        self.init_head = init_head
        self.batchnorm = batchnorm
        self.grad_clip = grad_clip
        self.patience = patience
        self.max_steps = max_steps  # stop after exactly this many optimizer steps (None: whole epochs)

    def validate(self, n_groups: int) -> None:
        if self.batchnorm not in ("frozen", "train"):
            raise ValueError(f"batchnorm must be 'frozen' or 'train', got {self.batchnorm!r}")
        if self.init_head not in ("probe", "random"):
            raise ValueError(f"init_head must be 'probe' or 'random', got {self.init_head!r}")
        parse_freeze(getattr(self, "freeze", "none"), n_groups)

    def settings(self, n_train: int, batch_size: int) -> RunSettings:
        bs = self.batch_size or batch_size
        epochs = self.epochs or steps_to_epochs(n_train, bs, self.steps, min_epochs=2, max_epochs=self.max_epochs)
        return RunSettings(epochs=epochs, batch_size=bs, warmup=self.warmup, grad_clip=self.grad_clip,
                           patience=self.patience, augment=self.augment, desc="fine-tune",
                           max_steps=getattr(self, "max_steps", None))

    def trainable_groups(self, epoch: int, n_groups: int) -> set[int]:
        return set(range(n_groups)) - parse_freeze(self.freeze, n_groups)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """One optimizer group per backbone layer group (lr decayed towards the input) + the head;
        no weight decay on biases and norm weights."""
        groups = model.backbone.layer_groups()
        n = len(groups)
        out = []
        for i, params in enumerate(groups):
            out += decay_groups(params, self.lr * self.layer_decay ** (n - 1 - i), self.weight_decay, i)
        head_lr = self.head_lr if self.head_lr is not None else self.lr
        out.append({"params": list(model.head.parameters()), "lr": head_lr,
                    "weight_decay": self.weight_decay, "group": n})
        return [g for g in out if g["params"]]

    def set_modes(self, model: nn.Module) -> None:
        trainable = {id(p) for g in model.backbone.layer_groups() for p in g if p.requires_grad}
        set_batchnorm_eval(model.backbone, None if self.batchnorm == "frozen" else trainable)
