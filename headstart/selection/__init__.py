"""Transferability scores on cached features: estimate, before any training, how well a
backbone's frozen features will serve the target labels. One file per score, paper cited at
the top; ``SCORES`` is the registry (a new score is one file plus one registration)."""
from __future__ import annotations

from headstart.selection.ranking import (  # torch-free: the rank memo reads it
    Ranking,
    RankRow,
)
from headstart.selection.scores import SCORES, h_score, knn_accuracy, leep, logme, nce


def __getattr__(name: str):  # PEP 562: ranking needs torch; the scores and the memo do not
    if name == "rank_backbones":
        from headstart.selection.rank import rank_backbones

        return rank_backbones
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCORES", "RankRow", "Ranking", "h_score", "knn_accuracy", "leep", "logme", "nce", "rank_backbones"]
