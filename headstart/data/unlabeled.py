"""Read inputs whose labels are absent or ignored: target data for shift detection and domain
adaptation. ``read_data`` needs class folders; here an image folder may be flat or nested (any
subfolder names, ignored), and a CSV/JSONL needs only its text or path column."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from headstart.data._base import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, LabeledData
from headstart.data.sources import from_sequences, read_data


def read_image_files(root: Path) -> LabeledData:
    """Every image (or, if audio files outnumber them, every audio file) under ``root``, at any
    depth, in sorted path order (hidden folders skipped)."""
    files = sorted(f for f in root.rglob("*") if f.is_file() and not any(
        part.startswith(".") for part in f.relative_to(root).parts))
    images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
    audio = [f for f in files if f.suffix.lower() in AUDIO_EXTENSIONS]
    if len(audio) > len(images):
        return LabeledData(audio, None, "audio")
    if not images:
        raise ValueError(f"{root}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) nor audio files "
                         f"({', '.join(sorted(AUDIO_EXTENSIONS))}) in it or below it")
    return LabeledData(images, None, "image")


def read_unlabeled(source: Any, *, text_column: str = "text", path_column: str = "path",
                   label_column: str = "label", modality: str | None = None) -> LabeledData:
    """Like ``read_data``, but labels are dropped and never required: a folder of images (flat
    or nested), a CSV/TSV/JSONL with a text or path column, LabeledData, or a sequence of items."""
    if isinstance(source, LabeledData):
        data = source
    elif isinstance(source, (str, Path)):  # a missing path: read_data names it
        p = Path(source)
        data = read_image_files(p) if p.is_dir() else read_data(
            p, text_column=text_column, path_column=path_column, label_column=label_column)
    else:
        data = from_sequences(source, None, modality)
    return LabeledData(list(data.items), None, data.modality, list(data.origins))
