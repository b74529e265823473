"""The bundle ``fit`` writes and ``load`` reads: a directory with ``model.safetensors`` (all
weights), ``headstart.json`` (backbone spec, preprocessing, head, labels, strategy, metrics,
versions, file hashes), ``backbone/`` (architecture only, to rebuild offline) and a
``README.md`` model card. No pickle anywhere."""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model

from headstart._files import check_finite, sha256_file
from headstart.backbones.local import load_local
from headstart.heads import build_head
from headstart.model import TransferModel
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


def save_bundle(directory: str | Path, model: TransferModel, meta: dict[str, Any], card: str) -> Path:
    d = Path(directory).resolve()
    check_finite(model.state_dict(), "a bundle")
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.backbone.save_architecture(tmp / "backbone")
    save_model(model, str(tmp / WEIGHTS))
    full = {"format_version": FORMAT_VERSION, **meta, "versions": versions(),
            "files": {WEIGHTS: sha256_file(tmp / WEIGHTS)}}
    (tmp / META).write_text(json.dumps(full, indent=2, default=str))
    (tmp / "README.md").write_text(card)
    # Move the bundle's own entries into place, weights metadata last; anything else in the
    # directory (the run's checkpoints/) is kept.
    d.mkdir(parents=True, exist_ok=True)
    for name in ("backbone", WEIGHTS, "README.md", META):
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
    backbone = load_local(d / "backbone", pretrained=False)
    head_cfg = meta["head"]
    n_out = int(meta.get("num_outputs", len(meta.get("classes", []))))
    head = build_head(head_cfg["name"], backbone.num_features, n_out, **head_cfg.get("params", {}))
    task_modules = task_from_state(meta["task"]).modules(backbone.num_features) if "task" in meta else {}
    model = TransferModel(backbone, head, task_modules)
    load_model(model, str(weights), strict=True)
    model.eval()
    return model, meta
