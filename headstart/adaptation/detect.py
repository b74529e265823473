"""From data to a shift report: read both domains (labels not needed), extract their frozen
backbone features through the feature cache (a later ``fit`` on the same inputs reuses them),
run ``shift_test``, and optionally write ``shift.json`` and the PCA plot."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from headstart._files import atomic_write_text
from headstart.adaptation.plot import plot_domains
from headstart.adaptation.shift import ShiftReport, p_text, shift_test
from headstart.data._base import LabeledData
from headstart.data.unlabeled import read_unlabeled
from headstart.data.validate import DataError, check_data
from headstart.recipes import DEFAULT_BACKBONES

DOMAINS = ("source", "target")


def _cap(data: LabeledData, max_samples: int | None, seed: int) -> LabeledData:
    """A seeded subsample of at most ``max_samples`` inputs, in their original order."""
    if max_samples is None or len(data) <= max_samples:
        return data
    return data.subset(np.sort(np.random.default_rng(seed).choice(len(data), max_samples, replace=False)))


def read_domains(source: Any, target: Any, *, columns: dict[str, str] | None = None, max_samples: int | None = 1000,
                 on_bad_sample: str = "skip", seed: int = 0, log: Callable[[str], None] | None = print,
                 ) -> tuple[LabeledData, LabeledData, list[str], tuple[int, int]]:
    """Both domains read without labels, capped at ``max_samples`` each (before any feature is
    computed), bad inputs dropped and named; returns them, notes for the report and the sizes
    as given."""
    cols = columns or {}
    raw = [read_unlabeled(d, **cols) for d in (source, target)]
    if raw[0].modality != raw[1].modality:
        raise DataError(f"the source is {raw[0].modality} data but the target is {raw[1].modality}")
    capped = [_cap(d, max_samples, seed + i) for i, d in enumerate(raw)]
    notes = [f"{name} subsampled to {len(c)} of {len(r)} inputs (seed {seed}; max_samples={max_samples})"
             for name, c, r in zip(DOMAINS, capped, raw) if len(c) < len(r)]
    report, src, _, tgt = check_data(capped[0], None, capped[1], policy=on_bad_sample, min_classes=0, classes=False)
    for b in report.bad:
        if log:
            log(f"skipped [{'source' if b.split == 'train' else 'target'}] {b.origin}: {b.reason}")
    if tgt is None or len(tgt) == 0:
        raise DataError("no usable target samples" + (f" ({len(report.bad)} bad, listed above)" if report.bad else ""))
    for name, before, after in zip(DOMAINS, capped, (src, tgt)):
        if len(after) < len(before):
            notes.append(f"{len(before) - len(after)} unusable {name} input(s) skipped")
    return src, tgt, notes, (len(raw[0]), len(raw[1]))


def domain_features(source: LabeledData, target: LabeledData, backbone: str = "auto", *,
                    image_size: int | None = None, max_length: int | None = None, multiscale: bool = True,
                    cache_dir: str | Path | None = None, device: str | None = None, batch_size: int = 64,
                    num_workers: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(source features, target features, the backbone spec used). The backbone's preprocessing
    is fitted to the source, as ``fit`` fits it to the training data, so the features are the
    ones a model trained on the source sees (and share its cache entries)."""
    import torch

    from headstart.backbones.prepare import prepare_backbone, resolve_device
    from headstart.features.cache import FeatureCache

    spec = DEFAULT_BACKBONES[source.modality] if backbone == "auto" else backbone
    torch.manual_seed(seed)  # randomly initialised backbones are the same on every call
    dev = resolve_device(device)
    bb = prepare_backbone(spec, source, image_size=image_size, multiscale=multiscale, max_length=max_length,
                          seed=seed).to(dev)
    cache = FeatureCache(cache_dir)
    kw: dict[str, Any] = {"batch_size": batch_size, "device": dev, "num_workers": num_workers}
    fs, ft = (cache.features(bb, d, **kw).double().numpy() for d in (source, target))
    return fs, ft, spec


def write_shift(report: ShiftReport, source: np.ndarray, target: np.ndarray, out: str | Path,
                plot_format: str = "png") -> list[Path]:
    """``out/shift.json`` (the report's numbers and verdict) and ``out/shift.png`` (or .svg)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = (f"{report.backbone or 'features'}: domain accuracy {100 * report.domain_accuracy:.0f}%, "
             f"MMD² {report.mmd2:.3g}, {p_text(report.p_value)}")
    plot = plot_domains(source, target, out / f"shift.{plot_format}", title=title, seed=report.seed)
    atomic_write_text(out / "shift.json", json.dumps(report.to_dict(), indent=2))
    return [out / "shift.json", plot]


def detect_shift(source: Any, target: Any, *, backbone: str = "auto", out: str | Path | None = None,
                 permutations: int = 1000, max_samples: int | None = 1000, alpha: float = 0.05, seed: int = 0,
                 columns: dict[str, str] | None = None, on_bad_sample: str = "skip",
                 image_size: int | None = None, max_length: int | None = None, cache_dir: str | Path | None = None,
                 device: str | None = None, batch_size: int = 64, plot_format: str = "png",
                 log: Callable[[str], None] | None = print) -> ShiftReport:
    """Does ``target`` (unlabeled: image folder flat or nested, CSV/JSONL of paths or texts, or
    items) differ from ``source`` in ``backbone``'s feature space? With ``out``, also writes
    shift.json and the PCA plot there."""
    t0 = time.perf_counter()
    src, tgt, notes, totals = read_domains(source, target, columns=columns, max_samples=max_samples,
                                   on_bad_sample=on_bad_sample, seed=seed, log=log)
    fs, ft, spec = domain_features(src, tgt, backbone, image_size=image_size, max_length=max_length,
                                   cache_dir=cache_dir, device=device, batch_size=batch_size, seed=seed)
    if log:
        log(f"features: {spec}, {fs.shape[1]} per input, {time.perf_counter() - t0:.1f} s")
    report = shift_test(fs, ft, permutations=permutations, max_samples=None, alpha=alpha, seed=seed)
    report = replace(report, backbone=spec, modality=src.modality, notes=notes + report.notes,
                     n_source_total=totals[0], n_target_total=totals[1], seconds=time.perf_counter() - t0)
    if out is not None:
        write_shift(report, fs, ft, out, plot_format)
    return report
