"""The Backbone contract: a pretrained feature extractor plus the preprocessing that travels
with its weights (torchvision's rule: never type the mean/std twice)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.data.config import AUDIO, IMAGE, TEXT, PretrainedCfg

__all__ = ["AUDIO", "IMAGE", "TEXT", "Backbone", "PretrainedCfg", "block_layer_groups", "split_source",
           "state_hash", "to_channels_last_if_cnn"]

class Backbone(nn.Module):
    """A pretrained network that maps a batch to pooled features ``(N, D)``.

    Subclasses set ``spec``, ``pretrained_cfg`` and ``num_features`` and implement
    ``forward_features``, ``layer_groups`` and ``save_architecture``.
    """

    spec: str
    pretrained_cfg: PretrainedCfg
    num_features: int
    # heads on cached features standardise each column first, unless the features' own scale
    # carries meaning (TF-IDF)
    standardize_features: bool = True

    def forward_features(self, batch: Any) -> torch.Tensor:  # (N, D)
        raise NotImplementedError

    def forward(self, batch: Any) -> torch.Tensor:
        return self.forward_features(batch)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters in groups ordered input -> output (freezing and layer-wise lr work on these)."""
        raise NotImplementedError

    def feature_block_dims(self) -> list[int]:
        """Sizes of the consecutive blocks that make up the features (one block unless multi-scale);
        a linear probe weights the blocks equally."""
        return [self.num_features]

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        """Adopt a saved configuration (a rebuilt backbone must compute the same features)."""
        self.pretrained_cfg = cfg

    def save_architecture(self, directory: Path) -> None:
        """Write what is needed to rebuild this architecture offline (no weights) into directory."""
        raise NotImplementedError

    def tokenizer(self) -> Any:
        """Text backbones return their tokenizer; image backbones have none."""
        return None

    def adapt_to(self, items: Any) -> None:
        """Learn what depends on the training inputs before any feature is computed (TF-IDF's
        vocabulary); a pretrained backbone has nothing to learn here."""

    @property
    def modality(self) -> str:
        return self.pretrained_cfg.modality

    def weights_hash(self) -> str:
        """SHA-256 over the backbone's tensors in key order. Not memoised: fine-tuning changes
        the weights, and a stale hash would serve stale cached features."""
        return state_hash(self.state_dict())

    def identity(self) -> str:
        """Stable id of weights + preprocessing: the feature-cache namespace."""
        payload = {"spec": self.spec, "weights": self.weights_hash(),
                   "pre": self.pretrained_cfg.preprocessing_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def write_config(self, directory: Path, source: str, arch: str, **extra: Any) -> None:
        """Write ``backbone.json``: the file the ``local:`` source reads back."""
        directory.mkdir(parents=True, exist_ok=True)
        cfg = {"source": source, "arch": arch, "spec": self.spec,
               "pretrained_cfg": self.pretrained_cfg.to_dict(), **extra}
        (directory / "backbone.json").write_text(json.dumps(cfg, indent=2))


def block_layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """A transformer's parameters as [everything before the blocks] + [one group per block] +
    [everything after] (final norm, pooler): its longest ``ModuleList`` holds the blocks."""
    blocks = max((m for m in model.modules() if isinstance(m, nn.ModuleList)), key=len, default=None)
    if blocks is None or len(blocks) < 2:
        return [list(model.parameters())]
    in_block = {id(p) for p in blocks.parameters()}
    first_block = next(iter(blocks[0].parameters()))
    before, after, seen_first = [], [], False
    for p in model.parameters():
        if p is first_block:
            seen_first = True
        if id(p) not in in_block:
            (after if seen_first else before).append(p)
    groups = [before] + [list(b.parameters()) for b in blocks] + [after]
    return [g for g in groups if g]


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors of a state dict, in key order (names included)."""
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def split_source(spec: str) -> tuple[str, str]:
    """``"timm:resnet50"`` -> ``("timm", "resnet50")``; a bare name is a catalog alias."""
    if ":" in spec:
        src, name = spec.split(":", 1)
        return src, name
    return "", spec


def to_channels_last_if_cnn(model: nn.Module) -> bool:
    """Convert a convolutional network's weights to channels_last (NHWC), the layout oneDNN and
    cuDNN run fastest (1.4x for EfficientNet-Lite0 inference on 2 CPU cores); transformers with a
    single patch-embedding convolution are left alone. Returns whether it converted."""
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    if convs < 4:
        return False
    model.to(memory_format=torch.channels_last)
    return True
