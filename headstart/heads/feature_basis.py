"""Standardise cached features and rotate them onto the span of the training rows.

Heads trained on cached features see ``z = (x - mu) / sd`` (each block of ``block_dims``
columns scaled to total variance 1, so multi-scale blocks of different widths weigh the same)
expressed in an orthonormal basis of the training rows' span: ``r <= n`` coordinates instead of
``D``. With an L2 penalty the first layer's useful weights lie in that span anyway (representer
theorem), so the model is the same and training is ``D / r`` times cheaper when ``D >> n``.
``fold`` writes a layer trained on the reduced coordinates back as a layer on raw features,
so saved heads never need the basis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class FeatureBasis:
    mu: np.ndarray  # (D,)
    sd: np.ndarray  # (D,) includes the block weighting
    basis: np.ndarray | None  # (r, D) orthonormal rows, or None: no rotation (n >= D)

    @classmethod
    def fit(cls, feats: torch.Tensor | np.ndarray, block_dims: list[int] | None = None,
            standardize: bool = True) -> "FeatureBasis":
        """``standardize=False`` only centres: for features whose scale already means something
        (TF-IDF rows: per-column scaling would lift rare n-grams to the weight of common ones)."""
        x = np.asarray(feats, dtype=np.float64)
        dims = block_dims or [x.shape[1]]
        if sum(dims) != x.shape[1]:
            raise ValueError(f"block_dims {dims} do not add up to {x.shape[1]} features")
        scale = np.concatenate([np.full(d, 1.0 / np.sqrt(d)) for d in dims])
        mu, sd = x.mean(0), ((x.std(0) + 1e-6) / scale if standardize else np.ones(x.shape[1]))
        if x.shape[0] >= x.shape[1]:
            return cls(mu, sd, None)
        zc = (x - mu) / sd  # centred: mu is the column mean
        # Right singular vectors from the n x n Gram matrix: n^2 D work instead of an SVD of zc.
        ev, u = np.linalg.eigh(zc @ zc.T)
        keep = ev > max(ev[-1], 0.0) * 1e-12
        if not keep.any():  # every row identical: any single direction will do
            return cls(mu, sd, np.eye(1, x.shape[1]))
        basis = (u[:, keep].T @ zc) / np.sqrt(ev[keep])[:, None]
        return cls(mu, sd, basis[::-1].copy())  # largest variance first

    @property
    def dim(self) -> int:
        return self.mu.shape[0] if self.basis is None else self.basis.shape[0]

    def transform(self, feats: torch.Tensor | np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, dtype=np.float64) - self.mu) / self.sd
        return z if self.basis is None else z @ self.basis.T

    def fold_weights(self, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(out, r) weights on reduced coordinates -> (out, D) weights on raw features."""
        w = weight if self.basis is None else weight @ self.basis
        w = w / self.sd
        return w, bias - w @ self.mu

    def fold(self, reduced: nn.Linear, target: nn.Linear) -> None:
        """Write ``reduced`` (trained on ``transform(x)``) into ``target`` (applied to raw x)."""
        w, b = self.fold_weights(reduced.weight.detach().double().cpu().numpy(),
                                 reduced.bias.detach().double().cpu().numpy())
        with torch.no_grad():
            target.weight.copy_(torch.from_numpy(w).to(target.weight))
            target.bias.copy_(torch.from_numpy(b).to(target.bias))
