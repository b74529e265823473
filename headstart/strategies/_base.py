"""Strategy contract (scikit-learn rule): ``__init__`` only stores its arguments; ``fit``
validates and learns. A strategy decides which parameters train, at which learning rates, the
BatchNorm mode of frozen parts, and how that changes per epoch."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from accelerate import Accelerator

from headstart.data._base import LabeledData
from headstart.data.feature_cache import FeatureCache
from headstart.model import TransferModel


@dataclass
class Split:
    data: LabeledData
    targets: np.ndarray  # (N,) int64 class indices

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class FitContext:
    """What every strategy needs from the run, built once by the estimator."""

    accelerator: Accelerator
    cache: FeatureCache | None = None
    batch_size: int = 32
    num_workers: int = 0
    seed: int = 0
    checkpoint_dir: Path | None = None
    resume: bool = False
    verbose: bool = True
    balance: str | None = None  # None | "weights" (class-weighted loss) | "sampler"
    checkpoint_every: int | None = None  # also checkpoint every N optimizer steps
    on_step: Callable[[dict[str, Any]], None] | None = None  # called after each optimizer step
    log: Callable[[str], None] = field(default=print)
    warm_start: bool = False  # the model continues an earlier fit: keep its head, start a new schedule

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def features(self, model: TransferModel, split: Split) -> torch.Tensor:
        """Frozen-backbone features for split (through the disk cache when there is one)."""
        bb = model.backbone
        if self.cache is None:
            from headstart.data.feature_cache import extract_features
            return extract_features(bb, split.data, batch_size=max(64, self.batch_size), device=self.device,
                                    num_workers=self.num_workers)
        return self.cache.features(bb, split.data, batch_size=max(64, self.batch_size), device=self.device,
                                   num_workers=self.num_workers)


class Strategy:
    name: ClassVar[str] = ""
    frozen_backbone: ClassVar[bool] = False  # True: predictions may come from cached features

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def fit(self, model: TransferModel, train: Split, val: Split | None, ctx: FitContext) -> list[dict[str, Any]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def class_weights(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (scikit-learn's 'balanced'), 0 for absent classes."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(targets) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)
