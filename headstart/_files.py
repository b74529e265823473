"""File helpers shared by checkpoints and bundles: hashes, durable atomic writes, and the
refusal to write non-finite weights."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only where tensors are handled: the rank memo reads files without it
    import torch


def cache_root() -> Path:
    """headstart's cache folder (``HEADSTART_CACHE`` overrides ``~/.cache/headstart``)."""
    return Path(os.environ.get("HEADSTART_CACHE", Path.home() / ".cache" / "headstart"))


def default_cache_dir() -> Path:
    """Where computed features, scores and rank memos live."""
    return cache_root() / "features"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_path(path: str | Path) -> None:
    """Flush a file or directory entry to disk (directories: where the OS allows it)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Temporary file, fsync, rename, fsync the directory: readers see old or new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def check_finite(state: dict[str, torch.Tensor], what: str) -> None:
    """Raise rather than write NaN/inf weights."""
    import torch

    bad = [k for k, v in state.items() if torch.is_floating_point(v) and not bool(torch.isfinite(v).all())]
    if bad:
        raise FloatingPointError(f"refusing to write {what}: non-finite values in {', '.join(bad[:5])}"
                                 + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))


def load_torch_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pt``/``.pth`` state dict without executing anything: ``weights_only=True``
    allows tensors and plain containers only; a file that needs more is refused."""
    import pickle

    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: refused: loading it would unpickle arbitrary Python objects "
                         f"(only tensors are allowed; {first})") from None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return sd
