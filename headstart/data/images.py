"""Image reading and the transforms derived from a backbone's pretrained_cfg."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2 as T

from headstart.data.config import PretrainedCfg


class BadSampleError(ValueError):
    """A sample that cannot be used; the message names it and says why."""


def load_image(item: Any, origin: str = "") -> Image.Image:
    """Open any supported image as RGB: EXIF orientation applied, greyscale/palette converted,
    transparency composited on white."""
    where = f"{origin} ({item})" if origin and isinstance(item, (str, Path)) else (origin or str(item))
    if isinstance(item, Image.Image):
        img = item
    elif isinstance(item, np.ndarray):
        arr = item
        if arr.dtype != np.uint8:
            raise BadSampleError(f"{where}: image array must be uint8, got {arr.dtype}")
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or 0 in arr.shape:
            raise BadSampleError(f"{where}: image array must be (H, W), (H, W, 1|3|4), got shape {arr.shape}")
        img = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    else:
        try:
            img = Image.open(item)
            img.load()
        except FileNotFoundError:
            raise BadSampleError(f"{where}: file not found") from None
        except Exception as e:  # PIL raises many types for corrupt files
            raise BadSampleError(f"{where}: cannot read image ({type(e).__name__}: {e})") from None
    try:
        return _to_rgb(img, oriented=not isinstance(item, (np.ndarray, Image.Image)))
    except Exception as e:  # corrupt EXIF, exotic modes: the file is named, nothing crashes
        raise BadSampleError(f"{where}: cannot convert image ({type(e).__name__}: {e})") from None


def _to_rgb(img: Image.Image, oriented: bool) -> Image.Image:
    if oriented:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float greyscale: scale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        img = Image.fromarray(((arr - lo) / (hi - lo) * 255 if hi > lo else arr * 0).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def item_digest(item: Any) -> bytes:
    """Content hash of an image item (file bytes, or pixels for in-memory images)."""
    h = hashlib.sha256()
    if isinstance(item, np.ndarray):
        h.update(str((item.shape, item.dtype.str)).encode())
        h.update(np.ascontiguousarray(item).tobytes())
    elif isinstance(item, Image.Image):
        h.update(str((item.mode, item.size)).encode())
        h.update(item.tobytes())
        if item.mode == "P":
            h.update(bytes(item.getpalette() or []))
    else:
        try:
            with open(item, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as e:
            raise BadSampleError(f"{item}: cannot read ({e.strerror or e})") from None
    return h.digest()


_INTERP = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
           "nearest": T.InterpolationMode.NEAREST}


class ImageTransform:
    """PIL image -> normalised (3, S, S) tensor. Eval: resize the shorter side to S and centre
    crop (the whole image is kept for square inputs). Train: random resized crop + flip."""

    def __init__(self, cfg: PretrainedCfg, size: int | None = None, train: bool = False,
                 crop_scale: tuple[float, float] = (0.7, 1.0), hflip: bool = True) -> None:
        self.size = int(size or cfg.input_size)
        interp = _INTERP.get(cfg.interpolation, T.InterpolationMode.BILINEAR)
        if train:
            geo = [T.RandomResizedCrop(self.size, scale=crop_scale, interpolation=interp, antialias=True)]
            if hflip:
                geo.append(T.RandomHorizontalFlip())
        else:
            geo = [T.Resize(self.size, interpolation=interp, antialias=True), T.CenterCrop(self.size)]
        self._t = T.Compose([T.ToImage(), *geo, T.ToDtype(torch.float32, scale=True),
                             T.Normalize(list(cfg.mean), list(cfg.std))])

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self._t(img)


def image_side(item: Any) -> int:
    """The shorter side of an image, reading only its header for files."""
    if isinstance(item, np.ndarray):
        return int(min(item.shape[:2]))
    if isinstance(item, Image.Image):
        return int(min(item.size))
    with Image.open(item) as im:
        return int(min(im.size))


def auto_image_size(items: list[Any], native: int, sample: int = 64, seed: int = 0) -> int:
    """Input size for small images: 4x their median shorter side (28 px -> 112), a multiple of
    16, at most the backbone's native size. Upsampling tiny images all the way to 224 costs 4x
    the compute for little gain; photos larger than that use the native size."""
    sides = []
    pick = np.random.RandomState(seed).permutation(len(items))[:sample]  # folders are sorted by class
    for it in (items[i] for i in pick):
        try:
            sides.append(image_side(it))
        except Exception:  # unreadable files are reported by the loader, with their name
            continue
    if not sides:
        return native
    target = 4 * float(np.median(sides))
    return int(min(native, max(64, 16 * int(np.ceil(target / 16)))))
