"""Transferability scores on cached features: estimate, before any training, how well a
backbone's frozen features will serve the target labels. One file per score, paper cited at
the top; ``SCORES`` is the registry (a new score is one file plus one registration)."""
from __future__ import annotations

from headstart._registry import Registry
from headstart.selection.hscore import h_score
from headstart.selection.knn import knn_accuracy
from headstart.selection.leep import leep
from headstart.selection.logme import logme
from headstart.selection.nce import nce

SCORES = Registry("transferability score")
SCORES.register("logme")(logme)
SCORES.register("h_score")(h_score)
SCORES.register("knn")(knn_accuracy)
SCORES.register("leep")(leep)
SCORES.register("nce")(nce)

from headstart.selection.ranking import Ranking, RankRow  # noqa: E402  (torch-free: the rank memo reads it)


def __getattr__(name: str):  # PEP 562: ranking needs torch; the scores and the memo do not
    if name == "rank_backbones":
        from headstart.selection.rank import rank_backbones

        return rank_backbones
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCORES", "RankRow", "Ranking", "h_score", "knn_accuracy", "leep", "logme", "nce", "rank_backbones"]
