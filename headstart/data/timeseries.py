"""Time series: the layouts users have, read into one form, the batch collation and the
pre-flight checks.

An item is a float32 array ``(C, T)``: C channels, T steps. Layouts read:
- CSV **wide**: one row per series, a label column and one numeric column per step (univariate);
  a row may end in empty cells (a shorter series).
- CSV **long**: one row per observation, columns ``id``, ``time``, ``value``, optional
  ``channel`` and the label column (one label per id); rows are put in time order.
- ``.npz`` holding ``X`` ``(N, T)`` or ``(N, C, T)`` and ``y``; ``.npy`` holding ``X`` only (unlabeled).
- in memory: a 2-D/3-D array, a list of ``(T,)``/``(C, T)`` arrays, or sktime's nested DataFrame
  (one column per channel, a ``pd.Series`` per cell).
In arrays, trailing steps that are NaN in every channel are padding (sktime and the UCR
archive write unequal lengths so): they are cut off.

Unequal lengths: **padded + masked**. A batch is zero-padded to its longest series and carries
each series' length; the encoders normalise and pool over the real steps only, so the padding
never changes a series' features. Not resampled to one length: a convolution filter covers a
fixed number of steps, and stretching a 30-step series to 300 steps changes what it sees tenfold.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from headstart.data._base import LabeledData

SERIES_EXTENSIONS = {".npy", ".npz"}
LONG_COLUMNS = ("id", "time", "value")
MIN_WIDE_STEPS = 3  # a CSV whose other columns are all numbers, at least this many, is wide-layout

__all__ = ["LONG_COLUMNS", "SERIES_EXTENSIONS", "as_series", "inspect_series", "read_series_array",
           "series_batch", "series_digest", "series_from_frame", "series_items", "series_layout",
           "series_notes"]


def as_series(x: Any) -> np.ndarray:
    """One series as float32 ``(C, T)`` (a 1-D input is one channel), trailing all-NaN steps cut."""
    a = np.asarray(x.to_numpy() if isinstance(x, pd.Series) else x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"a time series must be (T,) or (C, T), got shape {a.shape}")
    real = ~np.isnan(a).all(axis=0)
    end = int(np.nonzero(real)[0][-1]) + 1 if real.any() else a.shape[1]
    return np.ascontiguousarray(a[:, :end])


def series_items(x: Any) -> list[np.ndarray]:
    """A dataset's series as a list of ``(C, T)`` arrays: from a 2-D ``(N, T)`` or 3-D ``(N, C, T)``
    array, a list of arrays, or sktime's nested DataFrame."""
    if isinstance(x, pd.DataFrame):  # sktime nested: rows are series, columns channels, cells pd.Series
        return [np.stack([as_series(cell)[0] for cell in row]) if len(row) > 1 else as_series(row.iloc[0])
                for _, row in x.iterrows()]
    if isinstance(x, np.ndarray) and x.dtype != object:
        if x.ndim not in (2, 3):
            raise ValueError(f"time-series arrays are (N, T) or (N, C, T), got shape {x.shape}")
        return [as_series(row) for row in x]
    return [as_series(row) for row in x]


def read_series_array(path: Path) -> LabeledData:
    """``.npz`` with ``X`` (and ``y``), or ``.npy`` with ``X`` alone (unlabeled)."""
    try:
        if path.suffix.lower() == ".npy":
            x, y = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as z:
                xk = next((k for k in ("X", "x", "data") if k in z.files), None)
                if xk is None:
                    raise ValueError(f"{path}: needs an array named 'X' (the series); found {z.files}")
                yk = next((k for k in ("y", "labels", "label") if k in z.files), None)
                x, y = z[xk], (None if yk is None else z[yk])
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    items = series_items(x)
    labels = None if y is None else [v.item() if isinstance(v, np.generic) else v for v in np.asarray(y).tolist()]
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"{path}: {len(items)} series in X but {len(labels)} labels in y")
    return LabeledData(items, labels, "timeseries", [f"{path}: series {i}" for i in range(len(items))])


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.replace("", np.nan), errors="coerce")


def series_layout(df: pd.DataFrame, label_column: str = "label") -> str | None:
    """``"long"``, ``"wide"``, or None when the table is not time series (texts, paths)."""
    cols = [str(c) for c in df.columns]
    if all(c in cols for c in LONG_COLUMNS):
        return "long"
    steps = [c for c in cols if c not in (label_column, "id")]
    if len(steps) < MIN_WIDE_STEPS:
        return None
    head = df[steps].head(50)
    numbers = head.apply(_numeric)
    filled = head.apply(lambda s: s.astype(str).str.strip() != "")
    return "wide" if bool((numbers.notna() | ~filled).all().all()) and bool(numbers.notna().any().any()) else None


def series_from_frame(df: pd.DataFrame, where: Path, label_column: str, lines: list[int]) -> LabeledData:
    """The series of a wide- or long-layout table (see the module docstring)."""
    layout = series_layout(df, label_column)
    if layout == "long":
        return _long(df, where, label_column, lines)
    steps = [c for c in df.columns if c not in (label_column, "id")]
    values = df[steps].apply(_numeric).to_numpy(dtype=np.float32)  # (N, T); empty/unparsable: NaN
    items = [as_series(row) for row in values]
    labels = None if label_column not in df.columns else [_label(v) for v in df[label_column].tolist()]
    return LabeledData(items, labels, "timeseries", [f"{where}:{n}" for n in lines])


def _label(v: Any) -> Any:
    return None if v is None or (isinstance(v, str) and not v.strip()) or (
        isinstance(v, float) and np.isnan(v)) else v


def _time_order(t: pd.Series) -> pd.Series:
    """Sort keys for the time column: numbers, else dates, else the file's order."""
    num = _numeric(t)
    if num.notna().all():
        return num
    try:
        return pd.to_datetime(t)
    except (ValueError, TypeError):
        return pd.Series(np.arange(len(t)), index=t.index)


def _long(df: pd.DataFrame, where: Path, label_column: str, lines: list[int]) -> LabeledData:
    df = df.assign(_line=lines, _t=_time_order(df["time"]), _v=_numeric(df["value"]))
    channels = sorted(df["channel"].unique().tolist(), key=str) if "channel" in df.columns else [None]
    items, labels, origins = [], [], []
    for sid, g in df.groupby("id", sort=False):
        g = g.sort_values("_t", kind="stable")
        per = [g if c is None else g[g["channel"] == c] for c in channels]
        lengths = {str(c): len(p) for c, p in zip(channels, per)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{where}: id {sid!r} (line {g['_line'].min()}): its channels have different "
                             f"lengths {lengths}; each channel needs a value at every time")
        items.append(np.stack([p["_v"].to_numpy(dtype=np.float32) for p in per]))
        origins.append(f"{where}:{g['_line'].min()} (id {sid})")
        if label_column in df.columns:
            labs = {v for v in (_label(x) for x in g[label_column].tolist()) if v is not None}
            if len(labs) > 1:
                raise ValueError(f"{where}: id {sid!r} has several labels {sorted(map(str, labs))}; one per series")
            labels.append(next(iter(labs), None))
    return LabeledData(items, labels if label_column in df.columns else None, "timeseries", origins)


def series_digest(item: Any) -> bytes:
    """SHA-256 of a series' shape and values (the feature-cache key of a series)."""
    a = np.ascontiguousarray(item, dtype=np.float32)
    return hashlib.sha256(str(a.shape).encode() + a.tobytes()).digest()


def series_batch(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Collate (series (C, T), target) pairs: zero-padded to the longest, with each one's length."""
    series, targets = zip(*pairs)
    lengths = torch.tensor([np.shape(s)[-1] for s in series], dtype=torch.long)
    out = torch.zeros(len(series), np.shape(series[0])[0], int(lengths.max()))
    for i, s in enumerate(series):
        out[i, :, :lengths[i]] = torch.as_tensor(np.asarray(s, dtype=np.float32))
    return {"inputs": {"series": out, "lengths": lengths},  # (N, C, T), (N,)
            "targets": torch.as_tensor(np.stack([np.asarray(t) for t in targets]))}


def inspect_series(item: Any, origin: str, stats: list[tuple[str, int, int, bool, str]], split: str
                   ) -> tuple[str | None, bytes | None, bytes | None]:
    """(reason it is bad or None, digest, same digest). Appends (split, channels, steps, constant,
    origin) of each good series to ``stats``; a channel count other than the first series' is bad."""
    try:
        a = np.asarray(item, dtype=np.float32)
    except (TypeError, ValueError):
        return f"not a numeric series ({type(item).__name__})", None, None
    if a.ndim != 2:
        return f"a series must be (channels, steps), got shape {a.shape}", None, None
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        c, t = (int(v) for v in bad[0])
        what = "NaN or missing" if np.isnan(a[c, t]) else "infinite"
        chan = f" of channel {c}" if a.shape[0] > 1 else ""
        return f"{what} value at step {t}{chan} ({len(bad)} non-finite value(s) in this series)", None, None
    if a.shape[1] < 2:
        return f"{a.shape[1]} step(s): a series needs at least 2", None, None
    if stats and stats[0][1] != a.shape[0]:
        return f"{a.shape[0]} channel(s), but the first series has {stats[0][1]}", None, None
    stats.append((split, a.shape[0], a.shape[1], bool((np.ptp(a, axis=1) == 0).any()), origin))
    h = series_digest(a)
    return None, h, h


def series_notes(stats: Sequence[tuple[str, int, int, bool, str]]) -> tuple[list[str], list[str]]:
    """(notes, warnings) on the usable training series: count, channels, lengths, constant ones."""
    train = [s for s in stats if s[0] == "train"] or list(stats)
    if not train:
        return [], []
    chans, lengths = train[0][1], np.array([s[2] for s in train])
    steps = f"{lengths.min()} steps" if lengths.min() == lengths.max() else (
        f"{lengths.min()}-{lengths.max()} steps (unequal lengths: padded per batch, masked in normalisation "
        "and pooling)")
    notes = [f"time series: {len(train)} series, {chans} channel{'s' if chans > 1 else ''}, {steps}"]
    const = [s[4] for s in stats if s[3]]
    warn = [f"{len(const)} series with a constant channel (e.g. {const[0]}): z-normalised to zeros, it carries "
            "no shape"] if const else []
    top = Counter(s[0] for s in stats)
    if len(top) > 1:
        other = {k: v for k, v in top.items() if k != "train"}
        notes[0] += " (+ " + ", ".join(f"{v} {k}" for k, v in other.items()) + ")"
    return notes, warn
