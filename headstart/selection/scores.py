"""The transferability-score registry (a new score is one file plus one registration here)."""
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

__all__ = ["SCORES", "h_score", "knn_accuracy", "leep", "logme", "nce"]
