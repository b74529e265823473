"""``auto``: pick a strategy from the modality and the number of labeled examples, and say why.

The thresholds come from measurements on this project's benchmarks (benchmarks/fmnist.py,
benchmarks/rotten_tomatoes.py; numbers in the closing notes); the recipes are in
``headstart.recipes``.
"""
from __future__ import annotations

from headstart import recipes
from headstart.strategies._base import Strategy
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning


def text_fine_tuning() -> FineTuning:
    """The text recipe (``headstart.recipes.TEXT_FINE_TUNING``) as a strategy."""
    return FineTuning(**recipes.TEXT_FINE_TUNING)


def choose(modality: str, n_train: int, n_classes: int) -> tuple[Strategy, str]:
    """Return (strategy, reason). ``n_classes``: 0 for tasks without classes (regression)."""
    per_class = n_train / max(1, n_classes)
    if modality == "text" and n_train < 64:
        return (FeatureExtraction(),
                f"{n_train} texts (< 64): fine-tuning an encoder on this few swings widely between seeds; "
                "a linear probe on frozen sentence embeddings is the stable choice")
    if modality == "text":
        return (text_fine_tuning(),
                f"{n_train} texts: fine-tune the whole encoder (small batches, 5 epochs, label smoothing; "
                "a probe-initialised head hurts text here: it fits the training set and starves the encoder)")
    if n_train < 5000:
        return (FeatureExtraction(),
                f"{n_train} images" + (f" ({per_class:.0f} per class" if n_classes else " (") + ", < 5000): a "
                "linear head on the backbone's cached multi-scale features beats fine-tuning at this size, "
                "at a fraction of its cost")
    return (FineTuning(),
            f"{n_train} images: enough to fine-tune (LP-FT: a probe on cached features initialises the head, "
            "then the whole network trains with layer-wise lr decay)")
