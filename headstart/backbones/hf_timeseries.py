"""``hf:<hub id or directory>`` for a transformers time-series encoder: PatchTST
(``hf:ibm-granite/granite-timeseries-patchtst``) and PatchTSMixer, found by the config's
``model_type``. MOMENT and Chronos live in their own packages (momentfm, chronos-forecasting),
not in transformers, and are not read.

These encoders read a fixed window of ``context_length`` steps. Each series is placed on its own
in that window, so batch padding never changes its features: a shorter one is right-aligned
(the most recent steps last, as the forecasting models were trained) with its leading steps
marked unobserved; a longer one is resampled to the window by linear interpolation. The model
scales each series per channel itself (its ``scaling``: mean/std over the observed steps).
Features: the last hidden state (N, C, patches, d_model) averaged over the patches that hold
real steps and over the channels.

Channels: a channel-independent checkpoint (PatchTST with a shared patch embedding and no
channel attention; PatchTSMixer in ``common_channel`` mode) reads any count; one that mixes
channels needs its ``num_input_channels``: a single channel is repeated to them, any other count
is refused.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.backbones._base import Backbone, PretrainedCfg, block_layer_groups
from headstart.backbones.timeseries import series_inputs
from headstart.data.config import TIMESERIES

TS_MODEL_TYPES = ("patchtst", "patchtsmixer")
NAMES = {"patchtst": "PatchTST", "patchtsmixer": "PatchTSMixer"}


def channel_independent(config: Any) -> bool:
    """Whether the checkpoint applies the same weights to every channel (any count works)."""
    if config.model_type == "patchtsmixer":
        return getattr(config, "mode", "common_channel") == "common_channel"
    return bool(getattr(config, "share_embedding", True)) and not getattr(config, "channel_attention", False)


def fit_window(x: torch.Tensor, lengths: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, T) padded series -> (N, C, context) windows and (N,) real steps in each: shorter
    series right-aligned, longer ones resampled (linear) to the window."""
    out = torch.zeros(x.shape[0], x.shape[1], context, dtype=x.dtype, device=x.device)
    real = lengths.clamp(max=context)
    for i, n in enumerate(lengths.tolist()):
        s = x[i:i + 1, :, :max(int(n), 1)]
        if s.shape[-1] > context:
            s = nn.functional.interpolate(s, size=context, mode="linear", align_corners=True)
        out[i, :, context - s.shape[-1]:] = s[0]
    return out, real


class HFSeriesBackbone(Backbone):
    """A PatchTST / PatchTSMixer encoder pooled to (N, d_model), series fitted to its window."""

    def __init__(self, model: nn.Module, spec: str, license: str = "see model card") -> None:
        super().__init__()
        self.model = model  # past_values (N, T, C) -> last_hidden_state (N, C, patches, d_model)
        self.spec = spec
        cfg = model.config
        self.kind, self.context = cfg.model_type, int(cfg.context_length)
        self.independent = channel_independent(cfg)
        self.pretrained_cfg = PretrainedCfg(modality=TIMESERIES, source=spec, license=license, pooling="mean",
                                            channels=int(cfg.num_input_channels),
                                            extra={"context_length": self.context})
        self.num_features = int(cfg.d_model)

    def channels_for(self, channels: int) -> int:
        """The channel count the model will read for data with ``channels``, or a clear refusal."""
        need = int(self.model.config.num_input_channels)
        if self.independent or channels in (need, 1):
            return channels if self.independent else need
        raise ValueError(f"{self.spec}: this {NAMES[self.kind]} checkpoint mixes channels and reads exactly "
                         f"{need}; the series have {channels} (only 1 can be mapped, by repeating it)")

    def adapt_to(self, items: Any) -> None:
        """Take the channel count from the training series (checked against the checkpoint)."""
        if len(items):
            shape = np.shape(items[0])
            channels = int(shape[0]) if len(shape) == 2 else 1
            self.channels_for(channels)
            self.pretrained_cfg = replace(self.pretrained_cfg, channels=channels)

    def fit_note(self, items: Any) -> str | None:
        """What is done to the training series to fit the window, said aloud."""
        if not len(items):
            return None
        longest = max(int(np.shape(it)[-1]) for it in items)
        name = f"{NAMES[self.kind]}'s context of {self.context}"
        channels, read = self.pretrained_cfg.channels, self.channels_for(self.pretrained_cfg.channels)
        note = (f"padding series of up to {longest} steps to {name}" if longest < self.context else
                f"resampling series of up to {longest} steps to {name} (linear interpolation)"
                if longest > self.context else None)
        if read != channels:
            note = f"{note + '; ' if note else ''}repeating the 1 channel to the {read} {self.spec} reads"
        return note

    def _encode(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """(N, C, L) windows, (N, L) observed steps -> (N, C, P, D). A channel-independent model
        checks its channel count all the same: channels are packed in groups of that count (the
        last group filled with copies), each group a row of its own, which changes no output."""
        need = int(self.model.config.num_input_channels)
        n, c, length = x.shape
        groups = -(-c // need) if self.independent else 1
        if self.independent:
            x = torch.cat([x, x[:, -1:].expand(-1, groups * need - c, -1)], 1).reshape(n * groups, need, length)
        obs = observed.repeat_interleave(groups, 0)[:, :, None].expand(-1, -1, x.shape[1]).to(x.dtype)
        kw = {"past_observed_mask": obs} if self.kind == "patchtst" else {"observed_mask": obs}
        hidden = self.model(past_values=x.transpose(1, 2), **kw).last_hidden_state  # (N * G, K, P, D)
        return hidden.reshape(n, -1, *hidden.shape[2:])[:, :c]

    def forward_features(self, batch: Any) -> torch.Tensor:  # (N, C, T) -> (N, d_model)
        x, lengths = series_inputs(batch)
        read = self.channels_for(x.shape[1])
        x, real = fit_window(x, lengths, self.context)
        if read != x.shape[1]:
            x = x.expand(-1, read, -1)
        observed = torch.arange(self.context, device=x.device)[None] >= (self.context - real)[:, None]  # (N, L)
        hidden = self._encode(x, observed)  # (N, C, P, D)
        cfg = self.model.config
        p, stride = int(cfg.patch_length), int(getattr(cfg, "patch_stride", None) or cfg.patch_length)
        n_patches = hidden.shape[2]
        first = self.context - (p + stride * (n_patches - 1))  # the patchifier drops the oldest steps
        ends = first + p + stride * torch.arange(n_patches, device=x.device)  # (P,)
        keep = (ends[None] > (self.context - real)[:, None]).to(hidden.dtype)  # (N, P): holds a real step
        return (hidden.mean(1) * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return block_layer_groups(self.model)

    def save_architecture(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(directory)
        self.write_config(directory, "hf", ".")


def hf_series_encoder(name_or_path: str | Path, config: Any, pretrained: bool = True, spec: str | None = None,
                      license: str = "see model card") -> HFSeriesBackbone:
    """The encoder alone (no forecasting or pretraining head), never masking its input."""
    from transformers import AutoModel

    if config.model_type == "patchtst":
        config.do_mask_input = False  # pretraining checkpoints mask random patches in forward
    model = (AutoModel.from_pretrained(str(name_or_path), config=config) if pretrained
             else AutoModel.from_config(config))
    return HFSeriesBackbone(model, spec=spec or f"hf:{name_or_path}", license=license)
