"""torch Datasets and DataLoaders over LabeledData, using the backbone's preprocessing."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from headstart.backbones._base import IMAGE, Backbone
from headstart.data._base import LabeledData
from headstart.data.images import ImageTransform, load_image
from headstart.data.text import TokenizedTexts
from headstart.training.sampler import EpochSampler


class ItemDataset(Dataset):
    """Yields (input, target); images are decoded and transformed here, texts pass through."""

    def __init__(self, data: LabeledData, targets: np.ndarray | None, transform: Any = None,
                 decoded_cache_mb: float = 0) -> None:
        self.data = data
        self.targets = targets
        self.transform = transform
        self.budget = int(decoded_cache_mb * 2**20)  # decoded images kept across epochs (per worker)
        self._decoded: dict[int, Any] = {}

    def _image(self, i: int) -> Any:
        img = self._decoded.get(i)
        if img is None:
            img = load_image(self.data.items[i], self.data.origins[i])
            size = img.width * img.height * 3
            if size <= self.budget:
                self._decoded[i] = img
                self.budget -= size
        return img

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[Any, int]:
        key, i = index if isinstance(index, tuple) else (None, index)
        item = self.data.items[i]
        if self.data.modality == IMAGE:
            img = self._image(i)
            if key is None:
                item = self.transform(img)
            else:  # augmentation seeded by (epoch key, index): same on resume, any worker count
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed((key + i * 2_654_435_761) % (2**63))
                    item = self.transform(img)
        return item, -1 if self.targets is None else int(self.targets[i])


class TokenBatch:
    """Collate (token row, target) pairs into a padded tokenizer batch plus a target tensor."""

    def __init__(self, texts: TokenizedTexts) -> None:
        self.texts = texts

    def __call__(self, pairs: list[tuple[dict, int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        rows, targets = zip(*pairs)
        return self.texts.pad(list(rows)), torch.tensor(targets, dtype=torch.long)


def make_loader(data: LabeledData, targets: np.ndarray | None, backbone: Backbone, *, train: bool,
                batch_size: int, augment: bool | None = None, num_workers: int = 0, seed: int = 0,
                weights: np.ndarray | None = None) -> DataLoader:
    """``train`` shuffles through an ``EpochSampler`` (seeded, resumable; ``weights``: weighted
    sampling with replacement); ``augment`` (default: same as train) adds image augmentation."""
    cfg = backbone.pretrained_cfg
    augment = train if augment is None else augment
    if cfg.modality == IMAGE:
        # training loaders decode each image once and keep it (up to 512 MiB): epochs 2+ skip decoding
        ds = ItemDataset(data, targets, ImageTransform(cfg, train=augment), decoded_cache_mb=512 if train else 0)
        collate = None
    else:
        tokens = TokenizedTexts(backbone.tokenizer(), data.items, cfg.max_length)
        ds = ItemDataset(LabeledData(tokens.rows, data.labels, data.modality, data.origins), targets)
        collate = TokenBatch(tokens)
    sampler = EpochSampler(len(ds), seed, weights) if train else None
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler,
                      drop_last=False, num_workers=num_workers, collate_fn=collate, generator=gen,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
