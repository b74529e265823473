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

from headstart._files import default_cache_dir
from headstart.backbones._base import Backbone
from headstart.data._base import LabeledData
from headstart.data.loaders import in_input_order, make_loader
from headstart.data.modalities import digests as content_digests


def digests(data: LabeledData) -> list[bytes]:
    return content_digests(data.modality, data.items)


@torch.inference_mode()
def extract_features(backbone: Backbone, data: LabeledData, *, batch_size: int = 64,
                     device: torch.device | str = "cpu", num_workers: int = 0,
                     source_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Run the frozen backbone (eval mode) over data; returns (N, D) float32 on CPU, and with
    ``source_logits`` also the backbone's source-task logits (N, K) from the same pass."""
    was_training = backbone.training
    backbone.eval()
    loader = make_loader(data, None, backbone.pretrained_cfg, backbone.tokenizer(), train=False, batch_size=batch_size,
                         num_workers=num_workers, by_length=True)
    out, logits = [], []
    dev = torch.device(device)
    half = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    for batch in loader:
        batch = batch["inputs"]
        batch = ({k: v.to(dev, non_blocking=True) for k, v in batch.items()} if isinstance(batch, dict)
                 else batch.to(dev, non_blocking=True))
        with torch.autocast(dev.type, dtype=half, enabled=dev.type == "cuda"):  # GPU: bf16/fp16
            if source_logits:
                f, z = backbone.features_and_source_logits(batch)
                logits.append(z.float().cpu())
            else:
                f = backbone.forward_features(batch)
            out.append(f.float().cpu())
    backbone.train(was_training)
    feats = in_input_order(torch.cat(out), loader) if out else torch.empty(0, backbone.num_features)
    if not source_logits:
        return feats
    return feats, (in_input_order(torch.cat(logits), loader) if logits else torch.empty(0, 0))


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
                 device: torch.device | str = "cpu", num_workers: int = 0, identity: str | None = None) -> torch.Tensor:
        """(N, D) float32 features for data, from disk where present, computed otherwise.
        ``identity``: the backbone's, when the caller already knows it (hashing the weights is
        the costly part of a lookup)."""
        return self._lookup(backbone, data, False, batch_size, device, num_workers, identity)[0]

    def features_and_source_logits(self, backbone: Backbone, data: LabeledData, *, batch_size: int = 64,
                                   device: torch.device | str = "cpu",
                                   num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and the backbone's source-task logits, cached side by side (one pass computes
        both; the features namespace is the one ``features`` reads, so a later fit reuses it)."""
        feats, logits = self._lookup(backbone, data, True, batch_size, device, num_workers)
        return feats, logits

    def _lookup(self, backbone: Backbone, data: LabeledData, with_source: bool, batch_size: int,
                device: torch.device | str, num_workers: int,
                identity: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        ident = identity or backbone.identity()
        spaces = [self.root / ident] + ([self.root / f"{ident}-source-logits"] if with_source else [])
        keys = digests(data)
        indexes = [self._index(ns) if ns.is_dir() else {} for ns in spaces]
        missing = sorted({i for i, k in enumerate(keys) if any(k not in ix for ix in indexes)}, key=int)
        first_of: dict[bytes, int] = {}  # de-duplicate identical inputs among the missing ones
        for i in missing:
            first_of.setdefault(keys[i], i)
        todo = list(first_of.values())
        if todo:
            got = extract_features(backbone, data.subset(todo), batch_size=batch_size, device=device,
                                   num_workers=num_workers, source_logits=with_source)
            tensors = list(got) if with_source else [got]
            dg = torch.from_numpy(np.frombuffer(b"".join(keys[i] for i in todo), dtype=np.uint8).reshape(-1, 32).copy())
            for ns, ix, t in zip(spaces, indexes, tensors):
                self._write_shard(ns, ix, t, dg, [keys[i] for i in todo])
            self.computed += len(todo)
        self.reused += len(keys) - len(todo)
        feats = self._gather(indexes[0], keys, backbone.num_features)
        return feats, (self._gather(indexes[1], keys, None) if with_source else None)

    @staticmethod
    def _write_shard(ns: Path, index: dict[bytes, tuple[Path, int]], values: torch.Tensor,
                     dg: torch.Tensor, keys: list[bytes]) -> None:
        ns.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}"
        tmp, final = ns / f".{name}.tmp", ns / f"{name}.safetensors"
        save_file({"features": values.contiguous(), "digests": dg}, str(tmp))
        os.replace(tmp, final)  # atomic: a reader sees the whole shard or none of it
        for row, k in enumerate(keys):
            index[k] = (final, row)

    @staticmethod
    def _gather(index: dict[bytes, tuple[Path, int]], keys: list[bytes], dim: int | None) -> torch.Tensor:
        out = None if dim is None else torch.empty(len(keys), dim)
        by_shard: dict[Path, list[tuple[int, int]]] = {}
        for i, k in enumerate(keys):
            shard, row = index[k]
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            with safe_open(str(shard), "pt") as f:
                feats = f.get_tensor("features")
            if out is None:
                out = torch.empty(len(keys), feats.shape[1])
            dst, src = zip(*pairs)
            out[list(dst)] = feats[list(src)]
        return out if out is not None else torch.empty(0, 0)


class MemoryFeatures:
    """The features of one frozen ``backbone``, kept in memory by input content in front of a
    ``FeatureCache`` (``disk``; None: computed), with the backbone's identity (a hash of every
    weight) taken once. For a backbone that does not change while it is used: the planner fits
    many heads on it (one per cross-validation fold and rung) and each fit's lookups then cost
    a dictionary lookup per row, not a hash of the weights and a read of the shards.
    ``features`` has ``FeatureCache.features``'s signature; another backbone is refused."""

    def __init__(self, backbone: Backbone, disk: FeatureCache | None, identity: str | None = None) -> None:
        self.backbone, self.disk = backbone, disk
        self.rows: dict[bytes, torch.Tensor] = {}  # content digest -> (D,) features
        self._identity = identity  # the backbone's (None: taken at the first disk lookup)

    def features(self, backbone: Backbone, data: LabeledData, *, batch_size: int = 64,
                 device: torch.device | str = "cpu", num_workers: int = 0) -> torch.Tensor:
        """(N, D) float32 features for data: rows seen before from memory, the others from
        ``disk`` (or computed), then kept."""
        if backbone is not self.backbone:
            raise ValueError(f"these in-memory features are {self.backbone.spec}'s, not another backbone's")
        keys = digests(data)
        first_of: dict[bytes, int] = {}  # each new input once
        for i, k in enumerate(keys):
            if k not in self.rows:
                first_of.setdefault(k, i)
        todo = list(first_of.values())
        if todo:
            kw = dict(batch_size=batch_size, device=device, num_workers=num_workers)
            if self.disk is None:
                got = extract_features(backbone, data.subset(todo), **kw)
            else:
                self._identity = self._identity or backbone.identity()
                got = self.disk.features(backbone, data.subset(todo), identity=self._identity, **kw)
            self.rows.update((keys[i], row) for i, row in zip(todo, got))
        if not keys:
            return torch.empty(0, backbone.num_features)
        return torch.stack([self.rows[k] for k in keys])
