"""``torchvision:<model name>`` — torchvision's zoo; weights carry their transforms."""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from headstart.backbones._base import (
    IMAGE,
    Backbone,
    PretrainedCfg,
    to_channels_last_if_cnn,
)

_HEAD_ATTRS = ("fc", "classifier", "heads", "head")


class TorchvisionBackbone(Backbone):
    def __init__(self, arch: str, pretrained: bool = True, spec: str | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.spec = spec or f"torchvision:{arch}"
        weights_enum = torchvision.models.get_model_weights(arch).DEFAULT
        # inception/googlenet: the ImageNet weights expect transform_input=True, which torchvision only
        # sets when given weights; set it always so a rebuilt (weightless) copy computes the same.
        kwargs = ({"aux_logits": True, "init_weights": False, "transform_input": True}
                  if arch in ("inception_v3", "googlenet") else {})
        self.model = torchvision.models.get_model(arch, weights=None, **kwargs)
        if pretrained:  # never unpickle: the hub file is read with weights_only=True
            self.model.load_state_dict(weights_enum.get_state_dict(progress=True, check_hash=True, weights_only=True))
        for attr in ("AuxLogits", "aux1", "aux2"):  # auxiliary heads: not features
            if hasattr(self.model, attr):
                setattr(self.model, attr, None)
        if hasattr(self.model, "aux_logits"):
            self.model.aux_logits = False
        for attr in _HEAD_ATTRS:
            if hasattr(self.model, attr):
                setattr(self.model, attr, nn.Identity())
                break
        t = weights_enum.transforms()
        size = int(t.crop_size[0])
        self.pretrained_cfg = PretrainedCfg(
            modality=IMAGE, source=self.spec, license="BSD-3-Clause (code); see weights' terms",
            input_size=size, mean=tuple(t.mean), std=tuple(t.std),
            interpolation=str(t.interpolation.value), fixed_input_size=arch.startswith("vit_"))
        self.channels_last = to_channels_last_if_cnn(self.model)
        self.model.eval()
        with torch.no_grad():
            self.num_features = int(self.forward_features(torch.zeros(1, 3, size, size)).shape[1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, D)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).flatten(1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        groups: list[list[nn.Parameter]] = []
        for child in self.model.children():
            subs = list(child.children()) if isinstance(child, nn.Sequential) and len(child) > 4 else [child]
            groups += [list(s.parameters()) for s in subs]
        return [g for g in groups if g]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "torchvision", self.arch)


def build(name: str, pretrained: bool = True) -> TorchvisionBackbone:
    return TorchvisionBackbone(name, pretrained=pretrained)
