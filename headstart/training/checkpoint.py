"""Per-epoch checkpoints without pickle: tensors in safetensors, everything else in JSON.

``<dir>/epoch-0003/{model,optimizer}.safetensors + state.json``; ``<dir>/latest`` names the
newest complete one and is written last (a crash mid-write leaves the previous one valid).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


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


def save_checkpoint(directory: str | Path, epoch: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, extra: dict[str, Any],
                    keep: int = 2) -> Path:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    tmp = root / f".epoch-{epoch:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    state = {"epoch": epoch, "optimizer": opt_meta, "scheduler": scheduler.state_dict(), "extra": extra}
    (tmp / "state.json").write_text(json.dumps(state, default=float))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "latest")
    for old in sorted(root.glob("epoch-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_latest(directory: str | Path) -> dict[str, Any] | None:
    """The newest complete checkpoint as {epoch, model, optimizer, scheduler, extra}, or None."""
    root = Path(directory)
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    ck = root / pointer.read_text().strip()
    state = json.loads((ck / "state.json").read_text())
    return {"epoch": state["epoch"], "model": load_file(str(ck / "model.safetensors")),
            "optimizer": _unflatten_optimizer(load_file(str(ck / "optimizer.safetensors")), state["optimizer"]),
            "scheduler": state["scheduler"], "extra": state["extra"]}
