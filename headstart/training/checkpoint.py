"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

``<dir>/ckpt-EEEE-SSSSSS/`` (E: completed epochs, S: batches done in the next epoch) holds
``model.safetensors``, ``optimizer.safetensors``, ``rng.safetensors``, optional named tensor
groups (e.g. early stopping's best weights), ``state.json`` and ``manifest.json`` (SHA-256 of
every other file). It is written in a temporary directory, each file fsynced, then renamed;
``<dir>/latest`` names the newest and is written last. ``load_latest`` verifies the manifest
and falls back to the next newest valid checkpoint, so a crash or kill at any moment, even
mid-write, leaves a loadable one.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from headstart._files import atomic_write_text, check_finite, fsync_path, sha256_file
from headstart.training.rng import capture_rng

PREFIX = "ckpt-"


class CheckpointError(ValueError):
    """A checkpoint directory that fails verification."""


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """``optimizer.load_state_dict`` plus each per-parameter state tensor (Adam's moments) laid
    out like its parameter again. Checkpoints store tensors contiguous, so moments of
    channels_last weights come back NCHW; fused AdamW walks parameter, gradient and moments as
    flat memory and would pair the wrong elements (a resumed run would not be exact)."""
    optimizer.load_state_dict(state_dict)
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def checkpoint_name(epoch: int, step: int = 0) -> str:
    return f"{PREFIX}{epoch:04d}-{step:06d}"


def save_checkpoint(directory: str | Path, *, epoch: int, step: int = 0, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, extra: dict[str, Any] | None = None,
                    tensors: dict[str, dict[str, torch.Tensor]] | None = None, keep: int = 2) -> Path:
    """Write a checkpoint after ``epoch`` completed epochs and ``step`` batches of the next.
    Captures the global RNG states at this moment. Refuses non-finite model weights."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    check_finite(weights, "a checkpoint")
    name = checkpoint_name(epoch, step)
    final, tmp = root / name, root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = {"model.safetensors": weights}
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    files["optimizer.safetensors"] = opt_tensors
    rng_tensors, rng_meta = capture_rng()
    files["rng.safetensors"] = rng_tensors
    for group, ts in (tensors or {}).items():
        files[f"{group}.safetensors"] = {k: v.detach().cpu().contiguous() for k, v in ts.items()}
    for fname, ts in files.items():
        save_file(ts, str(tmp / fname))
    state = {"epoch": epoch, "step": step, "optimizer": opt_meta, "scheduler": scheduler.state_dict(),
             "rng": rng_meta, "groups": sorted(tensors or {}), "extra": extra or {}}
    (tmp / "state.json").write_text(json.dumps(state, default=float))
    manifest = {f.name: sha256_file(f) for f in sorted(tmp.iterdir())}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_path(root)
    atomic_write_text(root / "latest", name)
    for old in sorted(root.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify_checkpoint(path: str | Path) -> None:
    """Raise CheckpointError naming the file when anything listed is missing or altered."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path / 'manifest.json'}: unreadable ({e})") from None
    for fname, digest in manifest.items():
        f = path / fname
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        if sha256_file(f) != digest:
            raise CheckpointError(f"{f}: SHA-256 does not match the manifest (corrupt or modified)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    verify_checkpoint(path)
    state = json.loads((path / "state.json").read_text())
    return {"path": path, "epoch": state["epoch"], "step": state["step"],
            "model": load_file(str(path / "model.safetensors")),
            "optimizer": _unflatten_optimizer(load_file(str(path / "optimizer.safetensors")), state["optimizer"]),
            "scheduler": state["scheduler"], "rng": (load_file(str(path / "rng.safetensors")), state["rng"]),
            "tensors": {g: load_file(str(path / f"{g}.safetensors")) for g in state["groups"]},
            "extra": state["extra"]}


def load_latest(directory: str | Path) -> dict[str, Any] | None:
    """The newest valid checkpoint (``latest`` first, then by name), or None if there is none.
    Invalid ones are skipped with a warning that names the bad file."""
    root = Path(directory)
    if not root.is_dir():
        return None
    names = sorted((p.name for p in root.glob(f"{PREFIX}*") if p.is_dir()), reverse=True)
    pointer = root / "latest"
    if pointer.is_file() and pointer.read_text().strip() in names:
        first = pointer.read_text().strip()
        names = [first] + [n for n in names if n != first]
    for name in names:
        try:
            return read_checkpoint(root / name)
        except (CheckpointError, OSError, ValueError, KeyError) as e:
            warnings.warn(f"skipping checkpoint {root / name}: {e}", stacklevel=2)
    return None
