"""``auto``: pick a strategy from the modality and the number of labeled examples, and say why.

The thresholds come from measurements on this project's benchmarks (benchmarks/fmnist.py,
benchmarks/rotten_tomatoes.py; numbers in the closing notes).
"""
from __future__ import annotations

from typing import Any

from headstart.strategies._base import FitContext, Split, Strategy
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning


def text_fine_tuning() -> FineTuning:
    """The text recipe measured on Rotten Tomatoes (benchmarks/rotten_tomatoes.py): random head,
    encoder lr 5e-5 and head lr 5e-4 without layer decay, batch 8, 5 epochs, label smoothing 0.1."""
    return FineTuning(lr=5e-5, head_lr=5e-4, layer_decay=1.0, epochs=5, batch_size=8, init_head="random",
                      augment=False, batchnorm="train", label_smoothing=0.1)


def choose(modality: str, n_train: int, n_classes: int) -> tuple[Strategy, str]:
    """Return (strategy, reason)."""
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
