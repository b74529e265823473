"""``ts:fcn`` — a 1-D fully convolutional network for time series (Wang et al. 2017, "Time
series classification from scratch with deep neural networks"), pretrained by headstart itself
as Fawaz et al. 2018 ("Transfer learning for time series classification") propose: on source
series that are not the user's (``headstart.backbones.ts_pretrain`` trains it; catalog alias
``ts_fcn``). ``ts:fcn_tiny`` is the same design at width 8, always random (tests).

Three blocks conv -> BatchNorm -> ReLU (kernels 7, 5, 3; "same" padding), global average pooling
of each block's output, concatenated (multi-scale, as the image backbones' taps: the probe sees
short and longer motifs).
Each series is z-normalised per channel first, so the preprocessing travels with the weights.
Unequal lengths arrive padded with their lengths (``headstart.data.timeseries``): normalisation,
every block's output and the pooling are masked to the real steps, so a padded series gets
the features it would get alone (tested).

Several channels: the network is pretrained on one; ``adapt_to`` widens the first convolution to
the data's channel count by repeating its filters divided by the count (timm's rule for
``in_chans``), so a C-channel input of C copies of one series gives that series' features.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from headstart.backbones._base import Backbone, PretrainedCfg
from headstart.data.config import TIMESERIES

KERNELS = (7, 5, 3)  # odd: symmetric "same" padding (Wang et al. use 8, 5, 3)
# Wang et al.'s widths are 128, 256, 128; a quarter of the compute here (pretraining runs on the
# user's CPU on first use)
ARCHS: dict[str, tuple[int, int, int]] = {"fcn": (32, 64, 64), "fcn_tiny": (8, 16, 16)}
PRETRAINED = ("fcn",)  # archs with weights headstart trains (the rest are random by design)


def masked_znorm(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-series, per-channel z-normalisation over the real steps; (N, C, T), mask (N, 1, T)."""
    n = mask.sum(-1, keepdim=True).clamp(min=1)
    mean = (x * mask).sum(-1, keepdim=True) / n
    var = ((x - mean) ** 2 * mask).sum(-1, keepdim=True) / n
    return (x - mean) / (var.sqrt() + eps) * mask


def step_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(N,) lengths -> (N, 1, T) float mask of the real steps."""
    return (torch.arange(steps, device=lengths.device)[None] < lengths[:, None]).unsqueeze(1).float()


def series_inputs(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(series (N, C, T), lengths (N,)) from a collated batch or a bare tensor (all full length)."""
    if isinstance(batch, dict):
        return batch["series"].float(), batch["lengths"].to(batch["series"].device)
    x = batch.float() if batch.dim() == 3 else batch.float().unsqueeze(1)
    return x, torch.full((x.shape[0],), x.shape[-1], dtype=torch.long, device=x.device)


class SeriesFCN(Backbone):
    def __init__(self, widths: Sequence[int] = ARCHS["fcn"], channels: int = 1, spec: str = "ts:fcn",
                 arch: str = "fcn", license: str = "none (random)") -> None:
        super().__init__()
        self.spec, self.arch = spec, arch
        cins = [channels, *widths[:-1]]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv1d(ci, co, k, padding=k // 2, bias=False),
                                                  nn.BatchNorm1d(co), nn.ReLU(inplace=True))
                                    for ci, co, k in zip(cins, widths, KERNELS))
        self.widths = [int(w) for w in widths]
        self.num_features = sum(self.widths)
        self.pretrained_cfg = PretrainedCfg(modality=TIMESERIES, source=spec, license=license, channels=channels)

    @property
    def channels(self) -> int:
        return int(self.blocks[0][0].in_channels)

    def set_channels(self, channels: int) -> None:
        """Read ``channels`` input channels: the first filters repeated, divided by the count."""
        conv = self.blocks[0][0]
        if channels == conv.in_channels:
            return
        w = conv.weight.data.mean(1, keepdim=True)  # (O, 1, K): the one-channel filters
        new = nn.Conv1d(channels, conv.out_channels, conv.kernel_size[0],
                        padding=conv.kernel_size[0] // 2, bias=False)
        new.weight.data.copy_(w.repeat(1, channels, 1) / channels)
        self.blocks[0][0] = new.to(w.device)
        self.pretrained_cfg = replace(self.pretrained_cfg, channels=int(channels))

    def adapt_to(self, items: Any) -> None:
        """Take the channel count from the training series (all share it: the pre-flight checks)."""
        if len(items):
            shape = np.shape(items[0])
            self.set_channels(int(shape[0]) if len(shape) == 2 else 1)

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        self.set_channels(int(cfg.channels))
        self.pretrained_cfg = cfg

    def forward_features(self, batch: Any) -> torch.Tensor:  # (N, C, T) -> (N, D)
        x, lengths = series_inputs(batch)
        if x.shape[1] != self.channels:
            raise ValueError(f"{self.spec} reads {self.channels} channel(s); these series have {x.shape[1]}")
        mask = step_mask(lengths, x.shape[-1])  # (N, 1, T)
        x = masked_znorm(x, mask)
        pooled, n = [], mask.sum(-1).clamp(min=1)  # (N, 1)
        for block in self.blocks:
            x = block(x) * mask  # padding stays zero: the next convolution sees what it would unpadded
            pooled.append(x.sum(-1) / n)  # (N, width): global average over the real steps
        return torch.cat(pooled, 1)  # (N, sum of widths)

    def feature_block_dims(self) -> list[int]:
        return list(self.widths)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(b.parameters()) for b in self.blocks]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "ts", self.arch)

