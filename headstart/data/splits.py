"""Seeded stratified splits that also work when some classes are tiny."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def stratified_split(labels: Sequence[Any], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep_idx, held_idx): about ``fraction`` of every class is held out, at least one
    example of each class with two or more; a class with a single example stays in keep."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    y = np.asarray(labels, dtype=object)
    rng = np.random.RandomState(seed)
    keep, held = [], []
    for c in sorted(set(y.tolist()), key=str):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_held = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, int(round(len(idx) * fraction))))
        held += idx[:n_held].tolist()
        keep += idx[n_held:].tolist()
    return np.sort(np.array(keep, dtype=int)), np.sort(np.array(held, dtype=int))
