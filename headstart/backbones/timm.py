"""``timm:<model name>`` — any timm model, pooled pre-logits features, timm's own layer groups."""
from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.models import group_parameters
from torch import nn

from headstart.backbones._base import IMAGE, Backbone, PretrainedCfg


class TimmBackbone(Backbone):
    def __init__(self, arch: str, pretrained: bool = True, spec: str | None = None,
                 model: nn.Module | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.spec = spec or f"timm:{arch}"
        self.model = model if model is not None else timm.create_model(
            arch, pretrained=pretrained, num_classes=0)
        pc = self.model.pretrained_cfg
        self.pretrained_cfg = PretrainedCfg(
            modality=IMAGE, source=f"timm:{arch}", license=str(pc.get("license", "unknown")),
            input_size=int(pc.get("input_size", (3, 224, 224))[-1]),
            mean=tuple(pc.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(pc.get("std", (0.229, 0.224, 0.225))),
            interpolation=str(pc.get("interpolation", "bilinear")))
        self.num_features = int(self.model.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, D)
        return self.model(x)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        # timm's coarse groups: stem, each stage, final conv/norm (what its layer decay uses).
        named = dict(self.model.named_parameters())
        groups = group_parameters(self.model, self.model.group_matcher(coarse=True))
        return [[named[n] for n in groups[k] if n in named] for k in sorted(groups)]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "timm", self.arch)


def build(name: str, pretrained: bool = True) -> TimmBackbone:
    return TimmBackbone(name, pretrained=pretrained)
