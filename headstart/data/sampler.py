"""A training sampler whose order is a pure function of (seed, epoch): resuming at any epoch
and step replays exactly the batches an uninterrupted run would have seen, with any number
of dataloader workers.

It yields ``(key, index)`` pairs; ``key`` seeds per-sample augmentation (see
``ItemDataset``), so augmentation does not depend on worker count or on what ran before.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_key(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 12345) % (2**62)


class EpochSampler(Sampler):
    """Shuffled (or, with ``weights``, weighted with replacement) order for one epoch.

    ``use_epoch(epoch, skip)`` selects the epoch and drops its first ``skip`` samples (the
    batches a resumed run has already trained on). Named differently from ``set_epoch`` on
    purpose: Accelerate's loaders call ``set_epoch`` with their own iteration count."""

    def __init__(self, n: int, seed: int = 0, weights: np.ndarray | None = None) -> None:
        self.n, self.seed = int(n), int(seed)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch, self.skip = 0, 0

    def use_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def order(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(epoch_key(self.seed, self.epoch))
        if self.weights is not None:
            return torch.multinomial(self.weights, self.n, replacement=True, generator=gen)
        return torch.randperm(self.n, generator=gen)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        key = epoch_key(self.seed, self.epoch)
        for i in self.order()[self.skip:].tolist():
            yield key, i

    def __len__(self) -> int:
        return max(0, self.n - self.skip)
