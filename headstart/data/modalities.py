"""What each modality's items are: the file suffixes that name them (to detect the modality of
a folder or a path column) and the content digest the feature cache keys them by. A new
modality adds a row here and a dataset builder in ``headstart.data.loaders.DATASETS``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from headstart.data._base import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from headstart.data.config import AUDIO, IMAGE, TEXT, TIMESERIES
from headstart.data.images import item_digest
from headstart.data.text import text_digest
from headstart.data.timeseries import series_digest

FILE_EXTENSIONS: dict[str, set[str]] = {IMAGE: IMAGE_EXTENSIONS, AUDIO: AUDIO_EXTENSIONS}
DIGESTS: dict[str, Callable[[Any], bytes]] = {IMAGE: item_digest, AUDIO: item_digest, TEXT: text_digest,
                                               TIMESERIES: series_digest}


def modality_of_files(paths: Iterable[str | Path]) -> str | None:
    """The file modality whose extensions cover every path, or None (mixed or unknown)."""
    exts = {Path(p).suffix.lower() for p in paths}
    for name, known in FILE_EXTENSIONS.items():
        if exts and exts <= known:
            return name
    return None


def digests(modality: str, items: Iterable[Any]) -> list[bytes]:
    """SHA-256 of each item's content (file bytes, pixels, samples or text)."""
    if modality not in DIGESTS:
        raise ValueError(f"no content digest for modality {modality!r}; known: {', '.join(DIGESTS)}")
    fn = DIGESTS[modality]
    return [fn(it) for it in items]
