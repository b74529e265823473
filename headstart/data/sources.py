"""Read a dataset from an image folder, a CSV/TSV or JSONL file, or Python sequences."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from headstart.data._base import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, LabeledData, guess_modality
from headstart.data.timeseries import SERIES_EXTENSIONS, read_series_array, series_from_frame, series_items, \
    series_layout


def read_data(source: Any, labels: Sequence[Any] | None = None, *, text_column: str = "text",
              path_column: str = "path", label_column: str = "label",
              modality: str | None = None) -> LabeledData:
    """Dispatch on what ``source`` is. Sequences take ``labels`` beside them (sklearn's X, y)."""
    if isinstance(source, LabeledData):
        return source
    if isinstance(source, (str, Path)) and labels is None:
        p = Path(source)
        if p.is_dir():
            return read_folder(p)
        if p.is_file():
            if p.suffix.lower() in (".csv", ".tsv"):
                return read_table(p, text_column, path_column, label_column)
            if p.suffix.lower() in (".jsonl", ".ndjson"):
                return read_jsonl(p, text_column, path_column, label_column)
            if p.suffix.lower() in SERIES_EXTENSIONS:
                return read_series_array(p)
            raise ValueError(f"{p}: unsupported data file (use a folder of class folders, .csv, .tsv, .jsonl, "
                             ".npz or .npy)")
        raise FileNotFoundError(f"{p}: no such file or folder")
    return from_sequences(source, labels, modality)


def _is_series_input(items: Any) -> bool:
    """sktime's nested DataFrame, or a numeric 2-D array (N, T): rows that are 1-D cannot be images."""
    return isinstance(items, pd.DataFrame) or (
        isinstance(items, np.ndarray) and items.ndim == 2 and items.dtype.kind in "fiu")


def from_sequences(items: Sequence[Any], labels: Sequence[Any] | None,
                   modality: str | None = None) -> LabeledData:
    """Items and labels given in memory (sklearn's X, y); time series as ``series_items`` reads them."""
    y = None if labels is None else [v.item() if isinstance(v, np.generic) else v for v in labels]
    if modality == "timeseries" or (modality is None and _is_series_input(items)):
        return LabeledData(series_items(items), y, "timeseries")
    items = list(items)
    mod = modality or guess_modality(items)
    if mod in ("image", "audio"):
        items = [Path(it) if isinstance(it, str) else it for it in items]
    else:
        for i, it in enumerate(items):
            if not isinstance(it, str):
                raise ValueError(f"item {i}: a text must be a string, got {it!r}")
    return LabeledData(items, y, mod)


def read_folder(root: Path) -> LabeledData:
    """``root/<class>/<file>``: one subfolder per class, image or audio files found recursively
    inside it; the modality is the one whose files the folders hold (most of, if both)."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class subfolders (expected {root}/<class name>/<image or audio files>)")
    found: dict[str, tuple[list[Path], list[str]]] = {"image": ([], []), "audio": ([], [])}
    for c in classes:
        for f in sorted(f for f in (root / c).rglob("*") if f.is_file()):
            mod = "image" if f.suffix.lower() in IMAGE_EXTENSIONS else "audio" if (
                f.suffix.lower() in AUDIO_EXTENSIONS) else None
            if mod:
                found[mod][0].append(f)
                found[mod][1].append(c)
    mod = max(found, key=lambda m: len(found[m][0]))
    items, y = found[mod]
    if not items:
        raise ValueError(f"{root}: the class folders hold no image or audio files "
                         f"({', '.join(sorted(IMAGE_EXTENSIONS | AUDIO_EXTENSIONS))})")
    return LabeledData(items, y, mod)


def _from_frame(df: pd.DataFrame, where: Path, text_column: str, path_column: str,
                label_column: str, lines: list[int]) -> LabeledData:
    cols = list(df.columns)
    if text_column not in cols and path_column not in cols and series_layout(df, label_column):
        return series_from_frame(df, where, label_column, lines)
    if text_column in cols:
        mod, col = "text", text_column
    elif path_column in cols:
        col = path_column
        exts = {Path(v).suffix.lower() for v in df[col].tolist() if isinstance(v, str) and v.strip()}
        mod = "audio" if exts and exts <= AUDIO_EXTENSIONS else "image"
    else:
        raise ValueError(f"{where}: needs a {text_column!r} (texts) or {path_column!r} (image/audio paths) "
                         f"column, or time series (one numeric column per step, or columns id, time, value); "
                         f"found {cols}")
    raw = [v if isinstance(v, str) else "" for v in df[col].tolist()]  # JSONL nulls/numbers: empty
    origins = [f"{where}:{n}" for n in lines]
    # Empty texts/paths and missing labels are kept here and reported (then skipped or
    # refused) by the pre-flight check, which lists every bad row at once.
    items: list[Any] = raw if mod == "text" else [
        None if not v.strip() else (Path(v) if Path(v).is_absolute() else where.parent / v) for v in raw]
    names = [c.strip() for c in label_column.split(",") if c.strip()]
    labels = None
    if all(n in cols for n in names):
        per = [[None if _missing(v) else v for v in df[n].tolist()] for n in names]
        # several label columns (multitask): one tuple per row; a row missing any part is unlabeled
        labels = per[0] if len(per) == 1 else [None if any(v is None for v in row) else tuple(row)
                                               for row in zip(*per)]
    elif len(names) > 1 and any(n in cols for n in names):
        raise ValueError(f"{where}: label columns {[n for n in names if n not in cols]} missing; found {cols}")
    return LabeledData(items, labels, mod, origins)


def _missing(v: Any) -> bool:
    return (v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())
            or (isinstance(v, (list, tuple)) and len(v) == 0))


def read_table(path: Path, text_column: str, path_column: str, label_column: str) -> LabeledData:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 (byte {e.start}); re-save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: malformed table ({e})") from None
    if len(df) == 0:
        raise ValueError(f"{path}: has a header but no rows")
    return _from_frame(df, path, text_column, path_column, label_column, lines=list(range(2, len(df) + 2)))


def read_jsonl(path: Path, text_column: str, path_column: str, label_column: str) -> LabeledData:
    rows, numbers = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
        numbers.append(n)
    if not rows:
        raise ValueError(f"{path}: the file has no rows")
    df = pd.DataFrame(rows)
    for name in (c.strip() for c in label_column.split(",")):
        if name in df.columns:  # JSON numbers become strings like CSV cells; label lists stay lists
            df[name] = [None if _missing(v) else v if isinstance(v, str) else
                        tuple(str(x) for x in v) if isinstance(v, list) else str(v) for v in df[name]]
    return _from_frame(df, path, text_column, path_column, label_column, lines=numbers)
