"""``backbone='auto'`` for text: the installed sentence encoders and TF-IDF (trained from scratch)
compared by the cross-validated accuracy of a linear probe on each one's features, so the default
is the better of them on this data, said aloud — including when TF-IDF beats every pretrained
encoder (transfer does not always win on text).

The features go through the feature cache, so the chosen encoder's are reused by the fit that
follows. The comparison runs on a stratified subsample of at most ``MAX_SAMPLES`` examples; the
probe's own C-by-CV score (``heads.probe.fit_probe``) is the measure, the same for every candidate.
TF-IDF's vocabulary and idf are learned once on the compared texts, before the folds: label-free,
but slightly optimistic for TF-IDF, which is the side a NEGATIVE TRANSFER verdict leans to anyway.
The chosen encoder is built again by the fit (a second load of its weights, seconds; the features
come from the cache).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from headstart.backbones.catalog import CATALOG
from headstart.data._base import LabeledData
from headstart.data.splits import stratified_split
from headstart.features.cache import FeatureCache, extract_features
from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_probe

TEXT_ENCODERS = ("minilm", "mpnet")  # catalog aliases, cheapest first
SCRATCH_TEXT = "tfidf:1-2"
MAX_SAMPLES = 2000
MIN_PER_CLASS = 4  # fewer in some class: too few for cross-validation to tell encoders apart


@dataclass
class EncoderChoice:
    spec: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)  # candidate -> cross-validated probe accuracy
    seconds: dict[str, float] = field(default_factory=dict)  # candidate -> features + probe

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "reason": self.reason, "cv_accuracy": self.scores, "seconds": self.seconds}


def installed_text_encoders(candidates: Sequence[str] = TEXT_ENCODERS) -> list[str]:
    """The candidates whose weights are on this machine (no download is started to compare)."""
    out = []
    for alias in candidates:
        entry = CATALOG[alias]
        try:
            if entry.offline is not None and entry.offline() is not None:
                out.append(alias)
        except (OSError, ValueError):  # a partly installed model is not a candidate
            continue
    return out


def _features(spec: str, data: LabeledData, cache: FeatureCache | None, *, seed: int, device: Any,
              batch_size: int, max_length: int | None) -> torch.Tensor:
    from headstart.backbones.prepare import prepare_backbone

    bb = prepare_backbone(spec, data, max_length=max_length, seed=seed).to(device)
    if cache is None:
        return extract_features(bb, data, batch_size=batch_size, device=device)  # type: ignore[return-value]
    return cache.features(bb, data, batch_size=batch_size, device=device)


def choose_text_encoder(data: LabeledData, targets: np.ndarray, *, fallback: str,
                        candidates: Sequence[str] | None = None, cache: FeatureCache | None = None,
                        seed: int = 0, device: Any = "cpu", batch_size: int = 64, max_length: int | None = None,
                        log: Callable[[str], None] | None = None) -> EncoderChoice:
    """The candidate (installed encoders, then TF-IDF) whose probe cross-validates best on
    ``data`` (integer class ``targets``); ``fallback`` when there is nothing to compare."""
    cands = list(installed_text_encoders() if candidates is None else candidates)
    counts = np.bincount(targets)
    if counts[counts > 0].min() < MIN_PER_CLASS:
        return EncoderChoice(fallback, f"{fallback} (the default: fewer than {MIN_PER_CLASS} examples in some "
                                       "class, too few to compare encoders by cross-validation)")
    keep = np.arange(len(targets))
    if len(keep) > MAX_SAMPLES:
        _, keep = stratified_split(list(targets), MAX_SAMPLES / len(targets), seed)
    sub, y = data.subset(keep.tolist()), targets[keep]
    choice = EncoderChoice(fallback, "")
    for spec in [*cands, SCRATCH_TEXT]:
        t0 = time.perf_counter()
        feats = _features(spec, sub, cache if spec != SCRATCH_TEXT else None, seed=seed, device=device,
                          batch_size=batch_size, max_length=max_length)
        fit = fit_probe(feats, y, LinearHead(feats.shape[1], int(y.max()) + 1), seed=seed)
        choice.scores[spec], choice.seconds[spec] = float(fit["cv_accuracy"]), time.perf_counter() - t0
        if log:
            log(f"backbone auto: {spec} probe {100 * choice.scores[spec]:.1f}% (5-fold CV on {len(y)} texts, "
                f"{choice.seconds[spec]:.1f} s)")
    choice.spec = max(choice.scores, key=lambda s: choice.scores[s])  # ties: the earlier, cheaper one
    choice.reason = _reason(choice, len(y))
    return choice


def _reason(choice: EncoderChoice, n: int) -> str:
    s = choice.scores
    table = ", ".join(f"{k} {100 * v:.1f}%" for k, v in s.items())
    if choice.spec == SCRATCH_TEXT:
        return (f"NEGATIVE TRANSFER: TF-IDF + a linear probe, trained from scratch, cross-validates best on these "
                f"{n} texts ({table}): no pretrained encoder helps here, so the model is TF-IDF")
    return f"{choice.spec}: the best linear probe in 5-fold cross-validation on {n} texts ({table})"
