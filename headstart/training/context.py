"""What a training run needs from the estimator, built once per ``fit``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator

from headstart.data._base import LabeledData
from headstart.features.cache import FeatureCache, extract_features


@dataclass
class Split:
    data: LabeledData
    targets: np.ndarray  # what the task encoded: (N,) class indices, (N, K) multi-hot, (N, 1) values

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class FitContext:
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
    extras: dict[str, Any] = field(default_factory=dict)  # extra inputs tasks may need ("unlabeled", ...)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def features(self, backbone: Any, data: LabeledData) -> torch.Tensor:
        """Frozen-backbone features (N, D) for ``data`` (through the disk cache when there is one)."""
        kw = dict(batch_size=max(64, self.batch_size), device=self.device, num_workers=self.num_workers)
        if self.cache is None:
            return extract_features(backbone, data, **kw)
        return self.cache.features(backbone, data, **kw)
