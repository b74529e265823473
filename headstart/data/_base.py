"""LabeledData: items (image paths / in-memory images, or texts) with their labels and where
each came from, so that every error can name the file and row."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# what soundfile (libsndfile 1.2) decodes without FFmpeg
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"}


@dataclass
class LabeledData:
    """``items[i]`` has label ``labels[i]`` (as in the data, or None when unlabeled);
    ``origins[i]`` says where it came from (``file:row`` or a path) for error messages."""

    items: list[Any]
    labels: list[Any] | None
    modality: str
    origins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.origins:
            self.origins = [str(it) if isinstance(it, Path) else f"item {i}" for i, it in enumerate(self.items)]
        if self.labels is not None and len(self.labels) != len(self.items):
            raise ValueError(f"{len(self.items)} items but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.items)

    def concat(self, other: "LabeledData") -> "LabeledData":
        """These items followed by ``other``'s (same modality; both labeled or both not)."""
        if other.modality != self.modality:
            raise ValueError(f"cannot join {self.modality} and {other.modality} data")
        labels = None if self.labels is None or other.labels is None else list(self.labels) + list(other.labels)
        return LabeledData(list(self.items) + list(other.items), labels, self.modality,
                           list(self.origins) + list(other.origins))

    def subset(self, idx: Sequence[int] | np.ndarray) -> "LabeledData":
        idx = [int(i) for i in idx]
        return LabeledData([self.items[i] for i in idx],
                           None if self.labels is None else [self.labels[i] for i in idx],
                           self.modality, [self.origins[i] for i in idx])


def guess_modality(items: Sequence[Any]) -> str:
    """Paths with audio extensions are audio; other paths, PIL images and arrays are images;
    strings are texts unless they all name image or audio files."""
    if len(items) == 0:
        raise ValueError("no items: the dataset is empty")
    first = items[0]
    if isinstance(first, (Path, str)):
        exts = {Path(s).suffix.lower() for s in items[:50] if isinstance(s, (str, Path))}
        if exts and exts <= AUDIO_EXTENSIONS:
            return "audio"
        if isinstance(first, Path) or (exts and exts <= IMAGE_EXTENSIONS):
            return "image"
        return "text"
    return "image"
