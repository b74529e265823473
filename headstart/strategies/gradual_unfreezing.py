"""``gradual_unfreezing`` (Howard & Ruder 2018, ULMFiT): the head first, trained on cached
features, then the backbone's layer groups unfreeze one at a time from the output side,
``epochs_per_group`` epochs each, with discriminative (layer-wise decayed) learning rates."""
from __future__ import annotations

from headstart.strategies.fine_tuning import FineTuning


class GradualUnfreezing(FineTuning):
    name = "gradual_unfreezing"

    def __init__(self, epochs_per_group: int = 1, lr: float = 3e-4, head_lr: float | None = None,
                 layer_decay: float = 0.7, weight_decay: float = 0.01, steps: int = 400,
                 epochs: int | None = None, max_epochs: int = 60, batch_size: int | None = None,
                 warmup: float = 0.1, augment: bool = True, init_head: str = "probe", batchnorm: str = "frozen",
                 grad_clip: float = 1.0, patience: int = 5) -> None:
        super().__init__(freeze="none", lr=lr, head_lr=head_lr, layer_decay=layer_decay,
                         weight_decay=weight_decay, steps=steps, epochs=epochs, max_epochs=max_epochs,
                         batch_size=batch_size, warmup=warmup, augment=augment, init_head=init_head,
                         batchnorm=batchnorm, grad_clip=grad_clip, patience=patience)
        self.epochs_per_group = epochs_per_group

    def trainable_groups(self, epoch: int, n_groups: int) -> set[int]:
        k = min(n_groups, 1 + epoch // max(1, self.epochs_per_group))
        return set(range(n_groups - k, n_groups))
