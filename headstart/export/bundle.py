"""The bundle ``fit`` writes and ``load`` reads: a directory with ``model.safetensors`` (all
weights), ``headstart.json`` (backbone spec, preprocessing, head, labels, strategy, metrics,
versions, file hashes), ``backbone/`` (architecture only, to rebuild offline) and a
``README.md`` model card. No pickle anywhere.

A LoRA model on pretrained weights keeps only its adapter, head and task modules in
``model.safetensors`` and PEFT's config plus the base weights' SHA-256 under ``adapter`` in
``headstart.json``: ``load`` rebuilds the base from its spec, checks the hash, re-applies LoRA
and loads the rest, so the head is never lost and predictions are those of the fitted model."""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_file, save_model

from headstart._files import check_finite, sha256_file
from headstart.backbones import build_backbone
from headstart.backbones._base import Backbone, PretrainedCfg, state_hash
from headstart.backbones.local import load_local
from headstart.compression.architecture import apply_architecture, stored_shapes
from headstart.heads import build_head
from headstart.model import TransferModel
from headstart.strategies.lora import adapter_meta, apply_lora, config_from_dict, is_adapter_key
from headstart.tasks import task_from_state

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "headstart.json"


def versions() -> dict[str, str]:
    import timm
    import torch
    import transformers

    from headstart._version import __version__
    return {"headstart": __version__, "torch": torch.__version__, "timm": timm.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}


def save_bundle(directory: str | Path, model: TransferModel, meta: dict[str, Any], card: str,
                tensors: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the bundle; ``tensors``: more safetensors files by name (arrays), hashed in ``files``."""
    d = Path(directory).resolve()
    check_finite(model.state_dict(), "a bundle")
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.backbone.save_architecture(tmp / "backbone")
    adapter = adapter_meta(model.backbone)
    if adapter is not None and base_rebuilds(model.backbone.spec, adapter["base_sha256"]):
        # LoRA on pretrained weights: the adapter, the head and the task's modules only; load
        # rebuilds the base from its spec (checked against base_sha256) and re-applies LoRA
        adapter["weights"] = "adapter"
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
                   if not k.startswith("backbone.") or is_adapter_key(k)}, str(tmp / WEIGHTS))
    else:
        if adapter is not None:  # a randomly initialised base (tiny:, scratch:) cannot be rebuilt
            adapter["weights"] = "full"
        save_model(model, str(tmp / WEIGHTS))
    for name, arrays in (tensors or {}).items():
        save_file({k: torch.as_tensor(v).contiguous() for k, v in arrays.items()}, str(tmp / name))
    full = {"format_version": FORMAT_VERSION, **meta, "versions": versions(),
            "files": {WEIGHTS: sha256_file(tmp / WEIGHTS), **{n: sha256_file(tmp / n) for n in tensors or {}}}}
    if adapter is not None:
        full["adapter"] = adapter
    (tmp / META).write_text(json.dumps(full, indent=2, default=str))
    (tmp / "README.md").write_text(card)
    # Move the bundle's own entries into place, weights metadata last; anything else in the
    # directory (the run's checkpoints/) is kept.
    d.mkdir(parents=True, exist_ok=True)
    for name in ("backbone", WEIGHTS, *(tensors or {}), "README.md", META):
        if (d / name).is_dir():
            shutil.rmtree(d / name)
        os.replace(tmp / name, d / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return d


def load_bundle(directory: str | Path) -> tuple[TransferModel, dict[str, Any]]:
    d = Path(directory)
    if not (d / META).is_file():
        raise FileNotFoundError(f"{d}: not a headstart bundle ({META} missing)")
    try:
        meta = json.loads((d / META).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{d / META}: corrupt JSON ({e.msg} at line {e.lineno})") from None
    weights = d / WEIGHTS
    expected = meta.get("files", {}).get(WEIGHTS)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing")
    if expected and sha256_file(weights) != expected:
        raise ValueError(f"{weights}: SHA-256 does not match {META}; the file is corrupt or was modified")
    adapter = meta.get("adapter")
    if adapter is not None and adapter.get("weights") == "adapter":
        backbone = _rebuild_base(meta, adapter)
    else:
        backbone = load_local(d / "backbone", pretrained=False)
    if adapter is not None:
        apply_lora(backbone, config_from_dict(adapter["config"]))
    head_cfg = meta["head"]
    n_out = int(meta.get("num_outputs", len(meta.get("classes", []))))
    head = build_head(head_cfg["name"], backbone.num_features, n_out, **head_cfg.get("params", {}))
    task_modules = task_from_state(meta["task"]).modules(backbone.num_features) if "task" in meta else {}
    model = TransferModel(backbone, head, task_modules)
    pruned = meta.get("compression", {}).get("architecture")
    if pruned:  # structured pruning: rebuild the smaller layers before the strict load
        apply_architecture(model, pruned, stored_shapes(weights))
    if adapter is not None and adapter.get("weights") == "adapter":
        missing, unexpected = load_model(model, str(weights), strict=False)
        stray = sorted(set(missing) - {k for k in model.state_dict() if k.startswith("backbone.")
                                       and not is_adapter_key(k)}) + sorted(unexpected)
        if stray:
            raise ValueError(f"{weights}: does not match the LoRA adapter in {META} ({stray[:3]} ...)")
    else:
        load_model(model, str(weights), strict=True)
    model.eval()
    return model, meta


def load_tensors(directory: str | Path, meta: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    """A safetensors file ``save_bundle`` wrote beside the weights, checked against its hash."""
    from safetensors.torch import load_file

    path = Path(directory) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({META} lists it)")
    expected = meta.get("files", {}).get(name)
    if expected and sha256_file(path) != expected:
        raise ValueError(f"{path}: SHA-256 does not match {META}; the file is corrupt or was modified")
    return load_file(str(path))


def base_rebuilds(spec: str, sha256: str) -> bool:
    """Whether ``spec`` builds exactly the base weights (SHA-256) an adapter was trained on:
    pretrained weights do, a random initialisation (``tiny:``, ``scratch:``) does not."""
    try:
        with torch.random.fork_rng(devices=[]):  # a random build must not move the caller's RNG
            return state_hash(build_backbone(spec).state_dict()) == sha256
    except (OSError, KeyError, ValueError, RuntimeError):  # gone offline, moved, renamed
        return False


def _rebuild_base(meta: dict[str, Any], adapter: dict[str, Any]) -> Backbone:
    """The pretrained base of a LoRA bundle from its spec, verified against the recorded hash."""
    spec = meta["backbone"]["spec"]
    backbone = build_backbone(spec)
    backbone.set_pretrained_cfg(PretrainedCfg.from_dict(meta["backbone"]["pretrained_cfg"]))
    if state_hash(backbone.state_dict()) != adapter["base_sha256"]:
        raise ValueError(f"{spec}: its weights are not those this LoRA adapter was trained on (SHA-256 differs); "
                         "the bundle needs the same base weights")
    return backbone
