"""Features computed once per (backbone weights, preprocessing, input content) and kept on disk.

Layout: ``<root>/<backbone identity>/<shard>.safetensors`` with ``features`` (n, D) float32
and ``digests`` (n, 32) uint8 — the SHA-256 of each input's content. A lookup computes only
the rows it lacks, so a new head, new hyper-parameters or an overlapping dataset never re-run
the backbone on inputs already seen.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from headstart.backbones._base import IMAGE, Backbone
from headstart.data._base import LabeledData
from headstart.data.images import item_digest
from headstart.data.loaders import make_loader
from headstart.data.text import text_digest


def default_cache_dir() -> Path:
    return Path(os.environ.get("HEADSTART_CACHE", Path.home() / ".cache" / "headstart")) / "features"


def digests(data: LabeledData) -> list[bytes]:
    if data.modality == IMAGE:
        return [item_digest(it) for it in data.items]
    return [text_digest(it) for it in data.items]


@torch.inference_mode()
def extract_features(backbone: Backbone, data: LabeledData, *, batch_size: int = 64,
                     device: torch.device | str = "cpu", num_workers: int = 0) -> torch.Tensor:
    """Run the frozen backbone (eval mode) over data; returns (N, D) float32 on CPU."""
    was_training = backbone.training
    backbone.eval()
    loader = make_loader(data, None, backbone, train=False, batch_size=batch_size, num_workers=num_workers)
    out = []
    dev = torch.device(device)
    half = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    for batch, _ in loader:
        batch = ({k: v.to(dev, non_blocking=True) for k, v in batch.items()} if isinstance(batch, dict)
                 else batch.to(dev, non_blocking=True))
        with torch.autocast(dev.type, dtype=half, enabled=dev.type == "cuda"):  # GPU: bf16/fp16
            out.append(backbone.forward_features(batch).float().cpu())
    backbone.train(was_training)
    return torch.cat(out) if out else torch.empty(0, backbone.num_features)


class FeatureCache:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.computed = 0  # rows computed by the backbone through this cache object
        self.reused = 0

    def _index(self, ns: Path) -> dict[bytes, tuple[Path, int]]:
        index: dict[bytes, tuple[Path, int]] = {}
        for shard in sorted(ns.glob("*.safetensors")):
            try:
                with safe_open(str(shard), "pt") as f:
                    dg = f.get_tensor("digests").numpy()
            except Exception:  # a torn or foreign file is ignored, never trusted
                continue
            for row, d in enumerate(dg):
                index.setdefault(d.tobytes(), (shard, row))
        return index

    def features(self, backbone: Backbone, data: LabeledData, *, batch_size: int = 64,
                 device: torch.device | str = "cpu", num_workers: int = 0) -> torch.Tensor:
        """(N, D) float32 features for data, from disk where present, computed otherwise."""
        ns = self.root / backbone.identity()
        keys = digests(data)
        index = self._index(ns) if ns.is_dir() else {}
        missing = sorted({i for i, k in enumerate(keys) if k not in index}, key=int)
        # de-duplicate identical inputs among the missing ones
        first_of: dict[bytes, int] = {}
        for i in missing:
            first_of.setdefault(keys[i], i)
        todo = list(first_of.values())
        if todo:
            feats = extract_features(backbone, data.subset(todo), batch_size=batch_size, device=device,
                                     num_workers=num_workers)
            ns.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}-{os.getpid()}"
            tmp, final = ns / f".{name}.tmp", ns / f"{name}.safetensors"
            dg = torch.from_numpy(np.frombuffer(b"".join(keys[i] for i in todo), dtype=np.uint8).reshape(-1, 32).copy())
            save_file({"features": feats.contiguous(), "digests": dg}, str(tmp))
            os.replace(tmp, final)  # atomic: a reader sees the whole shard or none of it
            for row, i in enumerate(todo):
                index[keys[i]] = (final, row)
            self.computed += len(todo)
        self.reused += len(keys) - len(todo)
        return self._gather(index, keys, backbone.num_features)

    @staticmethod
    def _gather(index: dict[bytes, tuple[Path, int]], keys: list[bytes], dim: int) -> torch.Tensor:
        out = torch.empty(len(keys), dim)
        by_shard: dict[Path, list[tuple[int, int]]] = {}
        for i, k in enumerate(keys):
            shard, row = index[k]
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            with safe_open(str(shard), "pt") as f:
                feats = f.get_tensor("features")
            dst, src = zip(*pairs)
            out[list(dst)] = feats[list(src)]
        return out
