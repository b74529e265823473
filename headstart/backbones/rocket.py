"""``rocket:10000`` — ROCKET (Dempster et al. 2020, "ROCKET: exceptionally fast and accurate time
series classification using random convolutional kernels") as a backbone: the from-scratch rung
for time series, as TF-IDF is for text. Nothing is pretrained and nothing trains: random kernels,
two features each (the proportion of positive values and the maximum), and a linear head on the
cached features (the paper's ridge classifier; here the probe).

Kernels as in the paper: length 7, 9 or 11; weights N(0, 1), centred; bias U(-1, 1); dilation
2^U(0, log2((T - 1) / (L - 1))) for the training series' length T; zero padding on half of them;
for C channels, a random subset of 2^U(0, log2(min(C, L) + 1)) channels each. They are drawn
from a seed once the training length is known (``adapt_to``); the seed and the length travel
in the configuration, so a bundle rebuilds the same kernels without storing them. Own
implementation in torch (sktime's needs numba): kernels of one (length, dilation, padding) run as
one convolution. Series are z-normalised and masked like ``ts:fcn``'s (unequal lengths: each
series' features come from its own steps only).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.backbones._base import Backbone, PretrainedCfg
from headstart.backbones.timeseries import masked_znorm, series_inputs, step_mask
from headstart.data.config import TIMESERIES

DEFAULT_KERNELS = 10000


def draw_kernels(num: int, channels: int, length: int, seed: int) -> list[tuple[int, int, int, np.ndarray, np.ndarray]]:
    """ROCKET's random kernels grouped by (length, dilation, padding): (L, d, pad, weights
    (K, C, L), biases (K,)) per group, in a fixed order."""
    rng = np.random.RandomState(seed)
    groups: dict[tuple[int, int, int], tuple[list, list]] = {}
    for _ in range(num):
        size = int(rng.choice((7, 9, 11)))
        w = np.zeros((channels, size), dtype=np.float32)
        n_ch = int(2 ** rng.uniform(0, math.log2(min(channels, size) + 1)))
        chans = rng.choice(channels, min(n_ch, channels), replace=False)
        v = rng.normal(0, 1, (len(chans), size))
        w[chans] = v - v.mean()
        bias = rng.uniform(-1, 1)
        dil = int(2 ** rng.uniform(0, math.log2(max(length - 1, 1) / (size - 1)))) if length > size else 1
        pad = (size - 1) * dil // 2 if rng.randint(2) else 0
        g = groups.setdefault((size, max(dil, 1), pad), ([], []))
        g[0].append(w)
        g[1].append(bias)
    return [(k[0], k[1], k[2], np.stack(ws), np.asarray(bs, dtype=np.float32))
            for k, (ws, bs) in sorted(groups.items())]


class Rocket(Backbone):
    def __init__(self, num_kernels: int = DEFAULT_KERNELS, seed: int = 0, spec: str | None = None) -> None:
        super().__init__()
        self.num_kernels = int(num_kernels)
        self.spec = spec or f"rocket:{self.num_kernels}"
        self.num_features = 2 * self.num_kernels
        self.pretrained_cfg = PretrainedCfg(modality=TIMESERIES, source=self.spec, pooling="ppv_max",
                                            license="none (random kernels)", extra={"series_length": 0, "seed": seed})
        self.groups: list[tuple[int, int, int]] = []  # kernels: buffers w{i}, b{i} (not saved: redrawn)

    @property
    def fitted(self) -> bool:
        return bool(self.groups)

    def _draw(self) -> None:
        cfg = self.pretrained_cfg
        drawn = draw_kernels(self.num_kernels, cfg.channels, int(cfg.extra["series_length"]), int(cfg.extra["seed"]))
        self.groups = [(size, dil, pad) for size, dil, pad, _, _ in drawn]
        for i, (_, _, _, w, b) in enumerate(drawn):
            self.register_buffer(f"w{i}", torch.from_numpy(w), persistent=False)
            self.register_buffer(f"b{i}", torch.from_numpy(b), persistent=False)

    def adapt_to(self, items: Any) -> None:
        """Draw the kernels for the training series' channels and longest length (once)."""
        if self.fitted or not len(items):
            return
        shape = np.shape(items[0])
        length = max(np.shape(it)[-1] for it in items)
        extra = {**self.pretrained_cfg.extra, "series_length": int(length)}
        self.set_pretrained_cfg(replace(self.pretrained_cfg, channels=int(shape[0]) if len(shape) == 2 else 1,
                                        extra=extra))

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        self.pretrained_cfg = cfg
        if int(cfg.extra.get("series_length", 0)) > 0:
            self._draw()

    def forward_features(self, batch: Any) -> torch.Tensor:  # (N, C, T) -> (N, 2K)
        if not self.fitted:
            raise RuntimeError(f"{self.spec}: no kernels yet (drawn from the training series' length)")
        x, lengths = series_inputs(batch)
        if x.shape[1] != self.pretrained_cfg.channels:
            raise ValueError(f"{self.spec} reads {self.pretrained_cfg.channels} channel(s); "
                             f"these series have {x.shape[1]}")
        x = masked_znorm(x, step_mask(lengths, x.shape[-1]))
        ppv, mx = [], []
        for i, (size, dil, pad) in enumerate(self.groups):
            out = nn.functional.conv1d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"), padding=pad,
                                       dilation=dil)  # (N, K, T')
            n_out = (lengths + 2 * pad - (size - 1) * dil).clamp(min=0)  # valid outputs of each series
            keep = torch.arange(out.shape[-1], device=x.device)[None, None] < n_out[:, None, None]
            ppv.append(((out > 0) & keep).sum(-1) / n_out.clamp(min=1)[:, None])
            mx.append(torch.where(keep, out, torch.full_like(out, -torch.inf)).amax(-1).nan_to_num(0, 0, 0))
        return torch.cat([torch.cat(ppv, 1), torch.cat(mx, 1)], 1).float()

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return []  # random features: nothing to train

    def identity(self) -> str:
        """The kernels depend on the training length and the seed: the cache key must see them."""
        extra = self.pretrained_cfg.extra
        return hashlib.sha256(f"{super().identity()}|{extra.get('series_length')}|{extra.get('seed')}".encode()
                              ).hexdigest()[:32]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "rocket", str(self.num_kernels))


def build(name: str, pretrained: bool = True) -> Backbone:
    """``rocket:<kernels>[-<seed>]`` (``rocket:`` alone: 10,000 kernels, seed 0); ``pretrained``
    has no meaning here."""
    n, _, seed = (name or str(DEFAULT_KERNELS)).partition("-")
    try:
        kernels, seed_ = int(n), int(seed or 0)
    except ValueError:
        raise KeyError(f"rocket:{name}: expected rocket:<kernels>[-<seed>], e.g. rocket:10000") from None
    if kernels < 1:
        raise KeyError(f"rocket:{name}: needs at least one kernel")
    return Rocket(kernels, seed=seed_)
