"""Rank candidate backbones for a dataset before training: extract (or reuse) each one's frozen
features through the feature cache and score them with the transferability scores in
``SCORES``. The table says what each candidate scored, what its features cost, and which one to
pick and why."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from headstart._files import atomic_write_text
from headstart.data._base import LabeledData
from headstart.data.splits import stratified_split
from headstart.features.cache import FeatureCache, digests
from headstart.selection.ranking import Ranking, RankRow
from headstart.selection.scores import SCORES

FEATURE_SCORES = ("logme", "h_score", "knn")  # scores on the frozen features
SOURCE_SCORES = ("leep", "nce")  # scores on the backbone's source-task predictions
DEFAULT_SCORES = ("logme", "knn", "h_score", "leep", "nce")
# The score the recommendation follows; benchmarks/rank_tau.py measured its rank correlation
# with accuracy after fine-tuning: Kendall's tau +0.80 over 5 image candidates (Fashion-MNIST
# N=500), the same as k-NN and H-score, with no hyper-parameter.
DEFAULT_BY = "logme"


def _subsample(labels: Sequence[Any], max_samples: int | None, seed: int) -> np.ndarray:
    """Indices of a stratified subsample of at most ``max_samples`` (all when it fits)."""
    n = len(labels)
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    _, held = stratified_split(labels, max_samples / n, seed)
    return held


def score_features(feats: np.ndarray, targets: np.ndarray, source_logits: np.ndarray | None,
                   scores: Sequence[str]) -> dict[str, float | None]:
    """Every requested score; source-task scores are None when the backbone has no source task."""
    out: dict[str, float | None] = {}
    probs = None
    if source_logits is not None and source_logits.size:
        probs = torch.softmax(torch.from_numpy(source_logits).double(), 1).numpy()
    for name in scores:
        fn = SCORES.get(name)
        if name in SOURCE_SCORES:
            out[name] = None if probs is None else float(fn(probs, targets))
        else:
            out[name] = float(fn(feats, targets))
    return out


class _ScoreCache:
    """Scores are a function of (backbone identity, the inputs' digests, the labels): kept as
    JSON beside the features, so a second ranking of the same data recomputes nothing."""

    def __init__(self, root: Path, identity: str, keys: list[bytes], targets: np.ndarray) -> None:
        h = hashlib.sha256(identity.encode())
        h.update(b"".join(keys))
        h.update(np.asarray(targets, dtype=np.int64).tobytes())
        self.path = root / "scores" / f"{h.hexdigest()[:40]}.json"
        try:
            self.scores: dict[str, float | None] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.scores = {}

    def update(self, new: dict[str, float | None]) -> None:
        self.scores.update(new)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.scores))


def _reason(rows: list[RankRow], by: str) -> tuple[str | None, str]:
    ok = [r for r in rows if r.error is None and r.scores.get(by) is not None]
    if not ok:
        return None, f"no candidate could be scored by {by}"
    best = ok[0]
    why = f"highest {by} ({best.scores[by]:.4f}"
    if len(ok) > 1:
        why += f" vs {ok[1].scores[by]:.4f} for {ok[1].backbone}"
    why += ")"
    scored_by = {s: sum(r.scores.get(s) is not None for r in ok) for s in best.scores}
    agree = [s for s in best.scores if s != by and best.scores[s] is not None and scored_by[s] > 1
             and all(best.scores[s] >= (r.scores.get(s) if r.scores.get(s) is not None else -np.inf) for r in ok)]
    if agree:
        why += f"; {', '.join(agree)} agree"
    if best.backbone.startswith("scratch:") or best.backbone.startswith("tiny:"):
        why += ("; a randomly initialised candidate scores best: pretrained features look no better "
                "than random ones here, so expect little from transfer (compare with scratch)")
    return best.backbone, why


def rank_backbones(data: LabeledData, backbones: Sequence[str], *, scores: Sequence[str] = DEFAULT_SCORES,
                   by: str = DEFAULT_BY, max_samples: int | None = 2000, image_size: int | None = None,
                   max_length: int | None = None, multiscale: bool = True, cache_dir: str | Path | None = None,
                   batch_size: int = 64, num_workers: int = 0, device: str | None = None, seed: int = 0,
                   log: Callable[[str], None] | None = print) -> Ranking:
    """Score each backbone on ``data`` (labeled; a stratified subsample of ``max_samples``).
    A candidate that fails to build or run is reported in the table, not raised."""
    from headstart.backbones.prepare import prepare_backbone, resolve_device

    unknown = [s for s in scores if s not in SCORES]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; known: {', '.join(SCORES.list())}")
    if by not in scores:
        raise ValueError(f"by={by!r} must be one of the computed scores {list(scores)}")
    if data.labels is None:
        raise ValueError("ranking needs labeled data")
    keep = _subsample(data.labels, max_samples, seed)
    data = data.subset(keep.tolist())
    classes = sorted(set(data.labels), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise ValueError("ranking needs at least two classes")
    index = {c: i for i, c in enumerate(classes)}
    targets = np.array([index[lab] for lab in data.labels])
    cache = FeatureCache(cache_dir)
    dev = resolve_device(device)
    want_source = any(s in SOURCE_SCORES for s in scores)
    rows = []
    for spec in backbones:
        row = RankRow(spec)
        try:
            torch.manual_seed(seed)  # randomly initialised candidates are the same on every call
            bb = prepare_backbone(spec, data, image_size=image_size, multiscale=multiscale, max_length=max_length,
                                  seed=seed).to(dev)
            before = cache.computed
            t0 = time.perf_counter()
            kw = dict(batch_size=batch_size, device=dev, num_workers=num_workers)
            if want_source and getattr(bb, "has_source_task", lambda: False)():
                feats, logits = cache.features_and_source_logits(bb, data, **kw)
            else:
                feats, logits = cache.features(bb, data, **kw), None
            row.feature_seconds = time.perf_counter() - t0
            row.reused = cache.computed == before
            row.num_features = int(feats.shape[1])
            t0 = time.perf_counter()
            saved = _ScoreCache(cache.root, bb.identity(), digests(data), targets)
            todo = [s for s in scores if s not in saved.scores]
            if todo:
                saved.update(score_features(feats.double().numpy(), targets,
                                            None if logits is None else logits.numpy(), todo))
            row.scores = {s: saved.scores[s] for s in scores}
            row.score_seconds = time.perf_counter() - t0
        except Exception as e:  # one broken candidate must not sink the ranking
            row.error = f"{type(e).__name__}: {e}"
        rows.append(row)
        if log:
            log(f"{spec}: " + (row.error or f"features {row.feature_seconds:.1f} s"
                                              f"{' (cache)' if row.reused else ''}, scores {row.score_seconds:.1f} s"))
    rows.sort(key=lambda r: (r.error is not None, -(r.scores.get(by) if r.scores.get(by) is not None else -np.inf)))
    pick, reason = _reason(rows, by)
    return Ranking(rows, by, len(data), len(classes), pick, reason)
