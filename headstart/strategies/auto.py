"""``auto``: pick a strategy from the modality and the number of labeled examples, and say why.

The thresholds come from measurements on this project's benchmarks (benchmarks/README.md).
"""
from __future__ import annotations

from typing import Any

from headstart.strategies._base import FitContext, Split, Strategy
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning


def choose(modality: str, n_train: int, n_classes: int) -> tuple[Strategy, str]:
    """Return (strategy, reason)."""
    per_class = n_train / max(1, n_classes)
    if modality == "text" and n_train < 200:
        return (FeatureExtraction(),
                f"{n_train} texts (< 200): fine-tuning a text encoder this small overfits and swings "
                "between seeds; a probe on frozen sentence embeddings is the stronger, stable choice")
    if modality == "text":
        return (FineTuning(lr=1e-4, layer_decay=0.9, steps=300, max_epochs=20, batchnorm="train", augment=False),
                f"{n_train} texts: enough to fine-tune the whole encoder (LP-FT, layer-wise lr decay)")
    if n_train < 5000:
        return (FeatureExtraction(),
                f"{n_train} images ({per_class:.0f} per class, < 5000): a linear probe on the backbone's "
                "cached multi-scale features beats fine-tuning at this size, at a fraction of its cost")
    return (FineTuning(),
            f"{n_train} images: enough to fine-tune (LP-FT: a probe on cached features initialises the head, "
            "then the whole network trains with layer-wise lr decay)")


class Auto(Strategy):
    name = "auto"

    def __init__(self) -> None:
        pass

    def fit(self, model: Any, train: Split, val: Split | None, ctx: FitContext) -> list[dict[str, Any]]:
        raise RuntimeError("auto is resolved by the estimator before fit (see choose())")
