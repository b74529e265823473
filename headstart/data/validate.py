"""Pre-flight data checks, run by ``headstart check`` and by ``fit`` before any compute.

Per sample: missing, zero-byte, unreadable, corrupt or truncated image files, text saved
under an image extension, images too small to use, empty texts, unreadable, empty or silent
audio files (and, per dataset, their sample rates, channels, clipping and durations, said
aloud), time series with NaN/infinite values, of one step or another channel count (and, per
dataset, their count, channels and lengths, said aloud; constant series), missing labels, labels of
val/test unknown to training. Per dataset: counts per class, empty class folders, a single
class, classes too small to split, class imbalance, exact and near duplicates inside a split
(with conflicting labels) and across train/val/test (leakage).

Policy ``skip`` (default) drops bad samples and lists every one with its reason; ``fail``
raises ``DataError`` listing them. A dataset that cannot be trained on always raises.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from headstart.data._base import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, LabeledData
from headstart.data.audio import read_audio
from headstart.data.images import BadSampleError, load_image
from headstart.data.timeseries import inspect_series, series_notes

POLICIES = ("skip", "fail")
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """The data cannot be used as given; the message lists what is wrong and where."""


@dataclass
class BadSample:
    split: str
    origin: str
    reason: str


@dataclass
class DataReport:
    """What ``check_data`` found. ``bad`` samples were dropped (policy ``skip``)."""

    modality: str
    sizes: dict[str, int] = field(default_factory=dict)  # usable samples per split
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> count
    bad: list[BadSample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    imbalance: float = 1.0  # largest / smallest training class
    notes: list[str] = field(default_factory=list)  # facts said aloud (audio rates, durations)

    def format(self) -> str:
        lines = [f"{self.modality} data: " + ", ".join(f"{s} {n}" for s, n in self.sizes.items())]
        train = self.counts.get("train", {})
        if train:
            width = max(len(str(k)) for k in train)
            lines.append("class counts (train" + "".join(f" / {s}" for s in self.counts if s != "train") + "):")
            for lab in sorted(train, key=str):
                rest = "".join(f" / {self.counts[s].get(lab, 0)}" for s in self.counts if s != "train")
                lines.append(f"  {str(lab):<{width}}  {train[lab]}{rest}")
            lines.append(f"imbalance (largest / smallest class): {self.imbalance:.1f}")
        lines += self.notes
        if self.bad:
            lines.append(f"{len(self.bad)} bad sample(s):")
            lines += [f"  [{b.split}] {b.origin}: {b.reason}" for b in self.bad]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "sizes": self.sizes, "counts": self.counts,
                "bad": [b.__dict__ for b in self.bad], "warnings": self.warnings, "imbalance": self.imbalance,
                "notes": self.notes}


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c < 9 or 13 < c < 32 for c in head) == 0


def _average_hash(img: Image.Image, side: int = 16) -> bytes:
    """Perceptual hash: which pixels of a side x side greyscale thumbnail are above the mean.
    Equal hashes mean near-identical images (re-encoded, resized, slightly recoloured)."""
    small = np.asarray(img.convert("L").resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.packbits(small > small.mean()).tobytes()


def inspect_image(item: Any, origin: str, min_size: int) -> tuple[str | None, bytes | None, bytes | None]:
    """(reason it is bad or None, content digest, average hash)."""
    if isinstance(item, (str, Path)):
        problem = _file_problem(item, IMAGE_EXTENSIONS, "image")
        if problem:
            return problem, None, None
    elif item is None:
        return "empty image path", None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = load_image(item, origin)
    except (BadSampleError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        msg = str(e)
        reason = msg.split(": ", 1)[1] if msg.startswith(origin) and ": " in msg else msg
        if "truncated" in msg:
            reason = f"truncated image ({reason})"
        return reason, None, None
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad sample, never a crash
        return f"cannot decode image ({type(e).__name__}: {e})", None, None
    if min(img.size) < min_size:
        return f"image too small ({img.size[0]}x{img.size[1]} px, need at least {min_size} px)", None, None
    h = hashlib.sha256(img.tobytes()).digest()
    return None, h, _average_hash(img)


SILENT_PEAK = 1e-4  # below -80 dBFS everywhere: nothing to hear


def _file_problem(item: Any, extensions: set[str], kind: str) -> str | None:
    """Why a path cannot be a ``kind`` file (missing, empty, text, unknown suffix), or None."""
    if item is None or not str(item).strip():
        return f"empty {kind} path"
    p = Path(item)
    if not p.is_file():
        return "file not found"
    if p.stat().st_size == 0:
        return "zero-byte file"
    if _looks_like_text(p):
        return f"text saved under {'an' if kind[0] in 'aeiou' else 'a'} {kind} extension ({p.suffix or 'no extension'})"
    if p.suffix.lower() not in extensions:
        return f"unsupported extension {p.suffix!r}"
    return None


def inspect_audio(item: Any, origin: str, stats: list[tuple[int, float, bool, bool]]
                  ) -> tuple[str | None, bytes | None, bytes | None]:
    """(reason it is bad or None, digest of the decoded samples, same digest). Appends (rate,
    seconds, several channels, clipped) of each good clip to ``stats``."""
    if not isinstance(item, np.ndarray):
        problem = _file_problem(item, AUDIO_EXTENSIONS, "audio")
        if problem:
            return problem, None, None
    try:
        wave, rate = read_audio(item, origin)
    except BadSampleError as e:
        msg = str(e)
        return (msg.split(": ", 1)[1] if ": " in msg else msg), None, None
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad sample, never a crash
        return f"cannot decode audio ({type(e).__name__}: {e})", None, None
    peak = float(np.abs(wave).max())
    if peak < SILENT_PEAK:
        return f"silent audio (peak {peak:.1e}, {len(wave)} samples)", None, None
    channels = not isinstance(item, np.ndarray) and _channels(item) > 1
    stats.append((rate, len(wave) / rate if rate else 0.0, channels, float(np.mean(np.abs(wave) >= 0.999)) > 0.01))
    h = hashlib.sha256(str(rate).encode() + wave.tobytes()).digest()
    return None, h, h  # near duplicates of audio are not looked for: a shared hash is exact


def _channels(item: Any) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(item)).channels)
    except Exception:  # noqa: BLE001 - it decoded above; the channel count is only reported
        return 1


def audio_notes(stats: list[tuple[int, float, bool, bool]]) -> tuple[list[str], list[str]]:
    """(notes, warnings) on the usable clips: sample rates, durations, stereo, clipping."""
    if not stats:
        return [], []
    rates = Counter(r for r, _, _, _ in stats if r)
    secs = np.array([s for _, s, _, _ in stats if s > 0] or [0.0])
    notes = ["audio: " + ", ".join(f"{n} clip(s) at {r / 1000:g} kHz" for r, n in sorted(rates.items()))
             + f"; durations {secs.min():.2f}-{secs.max():.2f} s (median {np.median(secs):.2f} s)"]
    stereo = sum(c for _, _, c, _ in stats)
    if stereo:
        notes.append(f"audio: {stereo} clip(s) with several channels are mixed down to mono")
    warn = []
    if len(rates) > 1:
        warn.append(f"clips come at {len(rates)} different sample rates: each is resampled to the model's rate")
    clipped = sum(c for _, _, _, c in stats)
    if clipped:
        warn.append(f"{clipped} clip(s) are clipped (over 1% of samples at full scale)")
    if secs.min() > 0 and secs.max() / secs.min() > 20:
        warn.append(f"durations differ wildly ({secs.min():.2f} s to {secs.max():.2f} s)")
    return notes, warn


def _normalise_text(t: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", t.lower()).split())


def _bad_label(lab: Any) -> bool:
    return lab is None or (isinstance(lab, float) and np.isnan(lab)) or (isinstance(lab, str) and not lab.strip())


def check_data(train: LabeledData, val: LabeledData | None = None, test: LabeledData | None = None, *,
               policy: str = "skip", min_size: int = 8, root: str | Path | None = None,
               known_labels: list[Any] | None = None, min_classes: int = 2, classes: bool = True,
               label_problem: Callable[[Any], str | None] | None = None,
               ) -> tuple[DataReport, LabeledData, LabeledData | None, LabeledData | None]:
    """Check the splits; returns the report and the splits with bad samples removed.

    ``root``: the image folder the training data came from (to report empty class folders).
    ``known_labels``: the classes a fitted model knows (``eval``: every split is checked
    against them), else the training labels. ``min_classes``: fewer usable training classes
    is an error (2 for training, 1 for evaluation). ``classes=False`` (regression, multi-label,
    multitask targets): labels are values, not classes, so no class counts, imbalance or
    unseen-label checks; ``label_problem(label)`` (the task's) names a label it cannot use."""
    if policy not in POLICIES:
        raise ValueError(f"on_bad_sample must be one of {POLICIES}, got {policy!r}")
    report = DataReport(train.modality)
    splits = {"train": train, "val": val, "test": test}
    train_labels = set(known_labels) if known_labels is not None else (
        {lab for lab in (train.labels or []) if not _bad_label(lab)})
    keep: dict[str, list[int]] = {}
    digests: dict[str, dict[Any, list[int]]] = {}
    near: dict[str, dict[Any, list[int]]] = {}
    audio_stats: list[tuple[int, float, bool, bool]] = []
    series_stats: list[tuple[str, int, int, bool, str]] = []
    for name, data in splits.items():
        if data is None:
            continue
        if data.modality != train.modality:
            raise DataError(f"{name}: {data.modality} data but training data are {train.modality}")
        keep[name], digests[name], near[name] = [], defaultdict(list), defaultdict(list)
        for i, (item, origin) in enumerate(zip(data.items, data.origins)):
            lab = None if data.labels is None else data.labels[i]
            problem = label_problem(lab) if label_problem is not None and data.labels is not None else None
            if data.labels is not None and _bad_label(lab):
                reason = "missing label"
            elif problem:
                reason = problem
            elif classes and data.labels is not None and (name != "train" or known_labels is not None) \
                    and lab not in train_labels:
                reason = f"label {lab!r} does not occur in the training data"
            elif data.modality == "image":
                reason, dig, ahash = inspect_image(item, origin, min_size)
            elif data.modality == "audio":
                reason, dig, ahash = inspect_audio(item, origin, audio_stats)
            elif data.modality == "timeseries":
                reason, dig, ahash = inspect_series(item, origin, series_stats, name)
            else:
                reason = None if isinstance(item, str) and item.strip() else "empty text"
                dig = item if reason is None else None
                ahash = _normalise_text(item) if reason is None else None
            if reason is not None:
                report.bad.append(BadSample(name, origin, reason))
                continue
            keep[name].append(i)
            digests[name][dig].append(i)
            near[name][ahash].append(i)
    if report.bad and policy == "fail":
        listing = "\n".join(f"  [{b.split}] {b.origin}: {b.reason}" for b in report.bad)
        raise DataError(f"{len(report.bad)} bad sample(s) (on_bad_sample='fail'):\n{listing}")
    clean = {n: (splits[n].subset(idx) if len(idx) != len(splits[n]) else splits[n]) for n, idx in keep.items()}
    report.notes, audio_warnings = audio_notes(audio_stats)
    report.warnings += audio_warnings
    series_said, series_warnings = series_notes(series_stats)
    report.notes += series_said
    report.warnings += series_warnings
    _dataset_checks(report, clean, root, min_classes if classes else 0)
    _duplicate_checks(report, splits, keep, digests, near)
    return report, clean["train"], clean.get("val"), clean.get("test")


def _dataset_checks(report: DataReport, clean: dict[str, LabeledData], root: str | Path | None,
                    min_classes: int) -> None:
    train = clean["train"]
    report.sizes = {n: len(d) for n, d in clean.items()}
    if len(train) == 0:
        raise DataError("no usable training samples" + (f" ({len(report.bad)} bad, listed above)" if report.bad
                                                        else ": the dataset is empty") + "\n" + report.format())
    for n, d in clean.items():
        if d.labels is not None and min_classes:
            report.counts[n] = dict(Counter(str(v) if not isinstance(v, (int, str)) else v for v in d.labels))
    counts = report.counts.get("train", {})
    if train.labels is not None and min_classes:
        if len(counts) < min_classes:
            only = next(iter(counts), None)
            raise DataError(f"only one class ({only!r}) in the usable training data: classification needs "
                            "at least two\n" + report.format())
        report.imbalance = max(counts.values()) / min(counts.values()) if counts else 1.0
        if report.imbalance > 3:
            report.warnings.append(f"classes are imbalanced ({report.imbalance:.1f}x): headstart weights the "
                                   "loss by class and reports macro-F1")
        tiny = sorted((str(k) for k, v in counts.items() if v < 2))
        if tiny:
            report.warnings.append(f"class(es) with a single example, which cannot be split or cross-validated: "
                                   f"{', '.join(tiny[:10])}")
    if root is not None and Path(root).is_dir():
        for d in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(".")):
            exts = AUDIO_EXTENSIONS if report.modality == "audio" else IMAGE_EXTENSIONS
            if not any(f.is_file() and f.suffix.lower() in exts for f in d.rglob("*")):
                what = "audio files" if report.modality == "audio" else "images"
                report.warnings.append(f"class folder {d} holds no {what}: the class is left out")


def _duplicate_checks(report: DataReport, splits: dict[str, LabeledData | None], keep: dict[str, list[int]],
                      digests: dict[str, dict[Any, list[int]]], near: dict[str, dict[Any, list[int]]]) -> None:
    def origin(split: str, i: int) -> str:
        return splits[split].origins[i]

    for kind, table in (("exact", digests), ("near", near)):
        for split, groups in table.items():
            dups = [g for g in groups.values() if len(g) > 1]
            if kind == "near":  # near duplicates that are not also exact ones
                exact_of = {i: k for k, idx in digests[split].items() for i in idx}
                dups = [g for g in dups if len({exact_of[i] for i in g}) > 1]
            if dups:
                labels = splits[split].labels
                conflicting = [g for g in dups if labels is not None and len({labels[i] for i in g}) > 1]
                ex = ", ".join(origin(split, i) for i in dups[0][:3])
                report.warnings.append(f"{split}: {sum(len(g) - 1 for g in dups)} {kind} duplicate(s) in "
                                       f"{len(dups)} group(s), e.g. {ex}"
                                       + (f"; {len(conflicting)} group(s) with conflicting labels" if conflicting
                                          else ""))
        names = list(table)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                shared = set(table[a]) & set(table[b])
                if shared:
                    k = next(iter(shared))
                    report.warnings.append(
                        f"leakage: {len(shared)} {kind}-duplicate sample(s) in both {a} and {b}, e.g. "
                        f"{origin(a, table[a][k][0])} and {origin(b, table[b][k][0])}")

