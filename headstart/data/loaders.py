"""torch Datasets and DataLoaders over LabeledData, from a data config (size, mean/std, max
length) and a tokenizer: data/ knows no backbone. Batches are dicts: ``inputs`` (an image
tensor or a tokenizer batch) and ``targets`` (whatever the task encoded: class indices,
multi-hot rows, standardised values)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from headstart.data._base import LabeledData
from headstart.data.audio import AudioDecoder, AudioTransform, audio_batch
from headstart.data.config import AUDIO, IMAGE, TEXT, TIMESERIES, PretrainedCfg
from headstart.data.images import ImageTransform, load_image
from headstart.data.sampler import EpochSampler, epoch_key
from headstart.data.text import TokenizedTexts
from headstart.data.timeseries import series_batch


class ItemDataset(Dataset):
    """Yields (input, target row). Items that need decoding (images, audio: ``decode``) are
    decoded and transformed here; texts pass through. ``targets``: (N,) or (N, K) array, or
    None (unlabeled: target -1)."""

    def __init__(self, data: LabeledData, targets: np.ndarray | None, transform: Any = None,
                 decoded_cache_mb: float = 0, decode: Any = None) -> None:
        self.data = data
        self.targets = targets
        self.transform = transform
        self.decode = decode
        self.budget = int(decoded_cache_mb * 2**20)  # decoded items kept across epochs (per worker)
        self._decoded: dict[int, Any] = {}

    def _decoded_item(self, i: int) -> Any:
        obj = self._decoded.get(i)
        if obj is None:
            obj = self.decode(self.data.items[i], self.data.origins[i])
            size = obj.width * obj.height * 3 if hasattr(obj, "width") else int(getattr(obj, "nbytes", 0))
            if size <= self.budget:
                self._decoded[i] = obj
                self.budget -= size
        return obj

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[Any, Any]:
        key, i = index if isinstance(index, tuple) else (None, index)
        item = self.data.items[i]
        if self.decode is not None:
            obj = self._decoded_item(i)
            if key is None:
                item = self.transform(obj)
            else:  # augmentation seeded by (epoch key, index): same on resume, any worker count
                item = _seeded(self.transform, obj, (key + i * 2_654_435_761) % (2**63))
        return item, -1 if self.targets is None else self.targets[i]


def _decode_image(item: Any, origin: str = "") -> Any:
    return load_image(item, origin)


def _seeded(transform: Any, img: Any, seed: int) -> Any:
    """``transform(img)`` with the CPU generator seeded by ``seed``, its state restored after:
    what ``fork_rng(devices=[])`` + ``manual_seed`` did, without ``manual_seed`` also seeding
    (and, CUDA not yet initialised, queueing a stack-traced lazy call for) every accelerator's
    generators on each sample: 0.37 ms a sample, 12 ms of each 32-image batch (measured)."""
    state = torch.get_rng_state()
    torch.default_generator.manual_seed(seed)
    try:
        return transform(img)
    finally:
        torch.set_rng_state(state)


def _targets(values: tuple[Any, ...]) -> torch.Tensor:
    return torch.as_tensor(np.stack([np.asarray(v) for v in values]))


def image_batch(pairs: list[tuple[torch.Tensor, Any]]) -> dict[str, torch.Tensor]:
    images, targets = zip(*pairs)
    return {"inputs": torch.stack(images), "targets": _targets(targets)}  # (N, 3, H, W), (N, ...)


class TokenBatch:
    """Collate (token row, target) pairs into a padded tokenizer batch plus a target tensor."""

    def __init__(self, texts: TokenizedTexts) -> None:
        self.texts = texts

    def __call__(self, pairs: list[tuple[dict, Any]]) -> dict[str, Any]:
        rows, targets = zip(*pairs)
        return {"inputs": self.texts.pad(list(rows)), "targets": _targets(targets)}


class RowBatch:
    """collate_fn over cached feature rows: gathers a batch by one tensor index (not row by row)."""

    def __init__(self, feats: torch.Tensor, targets: torch.Tensor) -> None:
        self.feats, self.targets = feats, targets

    def __call__(self, idx: list[Any]) -> dict[str, torch.Tensor]:
        i = torch.as_tensor([j[1] if isinstance(j, tuple) else j for j in idx])
        return {"inputs": self.feats[i], "targets": self.targets[i]}


def make_loader(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any = None, *,
                train: bool, batch_size: int, augment: bool | None = None, num_workers: int = 0, seed: int = 0,
                weights: np.ndarray | None = None, by_length: bool = False) -> DataLoader:
    """``train`` shuffles through an ``EpochSampler`` (seeded, resumable; ``weights``: weighted
    sampling with replacement); ``augment`` (default: same as train) adds image augmentation.
    Texts need the model's ``tokenizer``. ``by_length`` (inference on texts): batches of similar
    token length, so little padding is computed; the loader's ``order`` says which input each
    output row is, and ``in_input_order`` puts the outputs back."""
    augment = train if augment is None else augment
    ds, collate = item_dataset(data, targets, cfg, tokenizer, augment=augment, decoded_cache_mb=512 if train else 0)
    order = length_order(ds.data.items) if by_length and not train and cfg.modality == TEXT else None
    loader = _loader(ds, collate, train=train, batch_size=batch_size, num_workers=num_workers, seed=seed,
                     weights=weights, order=order)
    loader.order = order
    return loader


def length_order(rows: list[dict[str, list[int]]]) -> list[int]:
    """Row indices, longest token row first (stable): batches of similar length pad little
    (1000 MiniLM snippets: 17.3 s -> 8.9 s measured); the longest batch comes first, so an
    out-of-memory error shows at once."""
    return sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))


def in_input_order(outputs: torch.Tensor, loader: Any) -> torch.Tensor:
    """Rows produced in ``loader.order`` (``make_loader(by_length=True)``) put back in input order."""
    order = getattr(loader, "order", None)
    if order is None:
        return outputs
    restored = torch.empty_like(outputs)
    restored[torch.as_tensor(order, dtype=torch.long)] = outputs
    return restored


def _image_dataset(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any,
                   augment: bool, decoded_cache_mb: float) -> tuple[Dataset, Any]:
    # training loaders decode each image once and keep it (up to 512 MiB): epochs 2+ skip decoding
    return ItemDataset(data, targets, ImageTransform(cfg, train=augment), decoded_cache_mb, _decode_image), image_batch


def _text_dataset(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any,
                  augment: bool, decoded_cache_mb: float) -> tuple[Dataset, Any]:
    tokens = TokenizedTexts(tokenizer, data.items, cfg.max_length)
    return ItemDataset(LabeledData(tokens.rows, data.labels, data.modality, data.origins), targets), TokenBatch(tokens)


def _audio_dataset(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any,
                   augment: bool, decoded_cache_mb: float) -> tuple[Dataset, Any]:
    return ItemDataset(data, targets, AudioTransform(cfg, train=augment), decoded_cache_mb,
                       AudioDecoder(cfg.sampling_rate)), audio_batch


def _series_dataset(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any,
                    augment: bool, decoded_cache_mb: float) -> tuple[Dataset, Any]:
    # series are in memory already (C, T): nothing to decode; no augmentation
    return ItemDataset(data, targets), series_batch


# One row per modality: what turns its items into model inputs. A new modality is its reader
# module plus a row here (and in ``headstart.data.modalities``); nothing downstream changes.
DATASETS: dict[str, Callable[..., tuple[Dataset, Any]]] = {
    IMAGE: _image_dataset, TEXT: _text_dataset, AUDIO: _audio_dataset, TIMESERIES: _series_dataset}


def item_dataset(data: LabeledData, targets: np.ndarray | None, cfg: PretrainedCfg, tokenizer: Any = None, *,
                 augment: bool = False, decoded_cache_mb: float = 0) -> tuple[Dataset, Any]:
    """(dataset, collate_fn) for ``cfg.modality``'s items."""
    if cfg.modality not in DATASETS:
        raise ValueError(f"no data reader for modality {cfg.modality!r}; known: {', '.join(DATASETS)}")
    return DATASETS[cfg.modality](data, targets, cfg, tokenizer, augment, decoded_cache_mb)


def feature_loader(feats: torch.Tensor, targets: np.ndarray, *, batch_size: int, seed: int = 0,
                   weights: np.ndarray | None = None) -> DataLoader:
    """Training batches of cached feature rows, in the same resumable order as ``make_loader``."""
    return _loader(_Rows(len(feats)), RowBatch(feats, torch.as_tensor(targets)), train=True,
                   batch_size=batch_size, num_workers=0, seed=seed, weights=weights)


class _Rows(Dataset):
    """Row indices for ``RowBatch`` (the sampler's ``(key, index)`` pairs pass through)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Any) -> Any:
        return index


def _loader(ds: Any, collate: Any, *, train: bool, batch_size: int, num_workers: int, seed: int,
            weights: np.ndarray | None, order: list[int] | None = None) -> DataLoader:
    sampler = EpochSampler(len(ds), seed, weights) if train else order
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler,
                      drop_last=False, num_workers=num_workers, collate_fn=collate, generator=gen,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())


class UnlabeledStream:
    """A second, unlabeled stream drawn alongside the labeled batches (domain adaptation,
    consistency training): the rows of step ``s`` in epoch ``e`` are a pure function of (seed, e,
    s) — successive permutations of the unlabeled set, cycled as often as needed — so a resumed
    run draws exactly the rows an uninterrupted one would."""

    def __init__(self, data: LabeledData, cfg: PretrainedCfg, tokenizer: Any = None, *, batch_size: int,
                 seed: int = 0, augment: bool = False) -> None:
        if len(data) == 0:
            raise ValueError("the unlabeled data are empty")
        self.n, self.batch_size, self.seed = len(data), int(batch_size), int(seed)
        self._perms: tuple[tuple[int, int], list[int]] = ((-1, -1), [])
        self.ds, self.collate = item_dataset(data, None, cfg, tokenizer, augment=augment)

    def _perm(self, epoch: int, cycle: int) -> list[int]:
        if self._perms[0] != (epoch, cycle):
            gen = torch.Generator().manual_seed(epoch_key(self.seed + 7919 * (cycle + 1), epoch))
            self._perms = ((epoch, cycle), torch.randperm(self.n, generator=gen).tolist())
        return self._perms[1]

    def indices(self, epoch: int, step: int) -> list[int]:
        first = step * self.batch_size
        return [self._perm(epoch, pos // self.n)[pos % self.n] for pos in range(first, first + self.batch_size)]

    def batch(self, epoch: int, step: int, device: torch.device | str = "cpu") -> Any:
        key = epoch_key(self.seed + 1, epoch)
        inputs = self.collate([self.ds[(key, i)] for i in self.indices(epoch, step)])["inputs"]
        return {k: v.to(device) for k, v in inputs.items()} if isinstance(inputs, dict) else inputs.to(device)
