"""``timm:<model name>`` — any timm model, pooled pre-logits features, timm's own layer groups."""
from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.models import group_parameters
from torch import nn

from headstart.backbones._base import (
    IMAGE,
    Backbone,
    PretrainedCfg,
    to_channels_last_if_cnn,
)


class TimmBackbone(Backbone):
    def __init__(self, arch: str, pretrained: bool = True, spec: str | None = None,
                 model: nn.Module | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.spec = spec or f"timm:{arch}"
        if model is None:
            model = timm.create_model(arch, pretrained=pretrained)
        # The source-task classifier (e.g. ImageNet's 1000 classes) is kept aside for the
        # transferability scores that need source predictions (LEEP, NCE); it is not part of
        # the backbone's parameters, state_dict or bundle. Random weights have no source task.
        self._source = (source_classifier(model),) if pretrained else (None,)
        model.reset_classifier(0)
        self.model = model
        pc = self.model.pretrained_cfg
        self.pretrained_cfg = PretrainedCfg(
            modality=IMAGE, source=f"timm:{arch}", license=str(pc.get("license", "unknown")),
            input_size=int(pc.get("input_size", (3, 224, 224))[-1]),
            mean=tuple(pc.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(pc.get("std", (0.229, 0.224, 0.225))),
            interpolation=str(pc.get("interpolation", "bilinear")),
            fixed_input_size=bool(pc.get("fixed_input_size", False)))
        self.num_features = int(self.model.num_features)
        self._hooks: list = []
        self._tapped: dict[str, torch.Tensor] = {}
        self._block_dims = [self.num_features]
        self.channels_last = to_channels_last_if_cnn(self.model)

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        """Install forward hooks on ``cfg.feature_taps`` (multi-scale features) or remove them."""
        self.pretrained_cfg = cfg
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if not cfg.feature_taps:
            self.num_features, self._block_dims = int(self.model.num_features), [int(self.model.num_features)]
            return
        modules = dict(self.model.named_modules())
        for name in cfg.feature_taps:
            if name not in modules:
                raise ValueError(f"{self.spec}: no module named {name!r} to tap for features")
            self._hooks.append(modules[name].register_forward_hook(self._store(name)))
        was = self.training
        self.eval()
        with torch.no_grad():  # channel counts only: a small probe image unless the size is fixed
            s = cfg.input_size if cfg.fixed_input_size else min(cfg.input_size, 64)
            self._block_dims = [int(b.shape[1]) for b in self._pooled(torch.zeros(1, 3, s, s))]
        self.train(was)
        self.num_features = sum(self._block_dims)

    def _store(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self._tapped[name] = output
        return hook

    def _pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._tapped.clear()
        self.model.forward_features(x)
        return self._pooled_from_tapped()

    def _pooled_from_tapped(self) -> list[torch.Tensor]:
        grid = self.pretrained_cfg.feature_grid
        out = []
        for name in self.pretrained_cfg.feature_taps:
            t = self._tapped[name]  # (N, C, h, w)
            parts = [t.mean(dim=(2, 3))]
            if grid > 1:
                parts.append(F.adaptive_avg_pool2d(t, grid).flatten(1))  # (N, C * grid * grid)
            out.append(torch.cat(parts, 1))
        self._tapped.clear()
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, D)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.pretrained_cfg.feature_taps:
            return self.model(x)
        return torch.cat(self._pooled(x), 1)

    def has_source_task(self) -> bool:
        return self._source[0] is not None

    def features_and_source_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: the pooled features ``(N, D)`` and the source-task logits ``(N, K)``."""
        if self._source[0] is None:
            raise ValueError(f"{self.spec}: no source-task classifier (random weights or none shipped)")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.pretrained_cfg.feature_taps:
            self._tapped.clear()
            final = self.model.forward_features(x)  # hooks capture the tapped blocks
            feats = torch.cat(self._pooled_from_tapped(), 1)
        else:
            final = self.model.forward_features(x)
            feats = None
        pre = self.model.forward_head(final, pre_logits=True)  # (N, num_features)
        clf = self._source[0].to(pre.device)
        return (pre if feats is None else feats), clf(pre)

    def feature_block_dims(self) -> list[int]:
        return list(self._block_dims)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        # timm's coarse groups: stem, each stage, final conv/norm (what its layer decay uses).
        named = dict(self.model.named_parameters())
        groups = group_parameters(self.model, self.model.group_matcher(coarse=True))
        return [[named[n] for n in groups[k] if n in named] for k in sorted(groups)]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "timm", self.arch)


def source_classifier(model: nn.Module) -> nn.Module | None:
    """A detached copy of a timm model's classifier (None when it has none)."""
    import copy

    clf = model.get_classifier()
    if not isinstance(clf, nn.Linear) or clf.out_features == 0:
        return None
    return copy.deepcopy(clf).eval().requires_grad_(False)


def build(name: str, pretrained: bool = True) -> TimmBackbone:
    return TimmBackbone(name, pretrained=pretrained)
