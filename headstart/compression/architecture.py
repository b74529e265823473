"""A pruned architecture written as data, so a bundle rebuilds it without the original weights.

Structured pruning (``headstart.compression.prune``) shrinks layers in place: a convolution keeps
fewer output channels, the BatchNorm after it fewer features, a linear layer fewer neurons. The
bundle keeps the original architecture in ``backbone/``; what pruning changed is recorded here as
the attributes that differ per module (``{"backbone.model.blocks.1.0.conv_pw": {"out_channels":
24}}``, read with ``vars`` so only plain constructor state counts) under
``compression.architecture`` in ``headstart.json``. ``load`` builds the original architecture with
random weights, sets those attributes, gives every tensor the shape ``model.safetensors`` stores
and then loads the weights strictly: no pickle, no original weights needed.

This module imports nothing from headstart: the bundle loader (below the estimator) uses it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

Attributes = dict[str, dict[str, Any]]


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, (bool, int, float, str, tuple, list))


def module_attributes(model: nn.Module) -> Attributes:
    """Each module's public JSON-able instance attributes (``in_channels``, ``num_features``,
    ``num_attention_heads`` ...), keyed by module name."""
    return {name: {k: v for k, v in vars(m).items() if not k.startswith("_") and _plain(v)}
            for name, m in model.named_modules()}


def changed_attributes(before: Attributes, after: Attributes) -> Attributes:
    """What differs between two ``module_attributes`` snapshots of the same architecture, as JSON
    (tuples become lists); modules that pruning removed entirely are refused."""
    gone = sorted(set(before) - set(after))
    if gone:
        raise ValueError(f"pruning removed whole modules ({gone[:3]} ...): the architecture cannot be rebuilt")
    out: Attributes = {}
    for name, attrs in after.items():
        diff = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if before.get(name, {}).get(k) != v}
        if diff:
            out[name] = diff
    return out


def stored_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes in a safetensors file, read from its header (no tensor is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def _resize(module: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    old = getattr(module, name)
    new = torch.empty(shape, dtype=old.dtype, device=old.device)
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=old.requires_grad))
    else:
        module.register_buffer(name, new, persistent=name not in module._non_persistent_buffers_set)


def apply_architecture(model: nn.Module, attributes: Attributes, shapes: dict[str, tuple[int, ...]]) -> int:
    """Turn a freshly built original architecture into the pruned one: set the recorded
    attributes and give each parameter/buffer the stored ``shapes``. Returns how many tensors
    were resized; names that do not exist raise (a bundle of another architecture)."""
    modules = dict(model.named_modules())
    unknown = sorted(set(attributes) - set(modules))
    if unknown:
        raise ValueError(f"the pruned architecture names modules this model does not have ({unknown[:3]} ...)")
    for name, attrs in attributes.items():
        for k, v in attrs.items():
            setattr(modules[name], k, tuple(v) if isinstance(getattr(modules[name], k, None), tuple) else v)
    resized = 0
    for key, tensor in model.state_dict().items():
        if key in shapes and tuple(tensor.shape) != shapes[key]:
            owner, _, leaf = key.rpartition(".")
            _resize(modules[owner], leaf, shapes[key])
            resized += 1
    if getattr(getattr(model, "backbone", None), "channels_last", False):
        model.backbone.to(memory_format=torch.channels_last)  # the layout the backbone runs fastest in
    return resized
