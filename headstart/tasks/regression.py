"""``regression``: a numeric target per example. Targets are standardised for training (mean 0,
standard deviation 1: one learning rate fits any unit) and mapped back for predictions; MSE or
Huber loss; MAE, RMSE and R² (scikit-learn's); on cached features a linear head is ridge
regression with alpha by leave-one-out CV."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_ridge
from headstart.heads.prototype import PrototypeHead
from headstart.tasks._base import Task


def as_number(value: Any) -> float | None:
    """A finite float, or None when ``value`` is not a number ("12.5" and 12 are; "n/a" is not)."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value.strip().replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


class RegressionTask(Task):
    name = "regression"

    def __init__(self, objective: str = "mse", huber_delta: float = 1.0) -> None:
        self.objective = objective
        self.huber_delta = huber_delta

    def label_problem(self, label: Any) -> str | None:
        return None if as_number(label) is not None else f"target {label!r} is not a number"

    def fit_targets(self, labels: Sequence[Any]) -> "RegressionTask":
        if self.objective not in ("mse", "huber"):
            raise ValueError(f"regression objective must be mse or huber, got {self.objective!r}")
        y = self.encode_raw(labels, [f"item {i}" for i in range(len(labels))], "train")
        if len(y) < 2 or float(np.std(y)) == 0.0:
            raise ValueError("regression needs at least two different target values in the training data")
        self.mean_, self.scale_ = float(np.mean(y)), float(np.std(y))
        return self

    @property
    def num_outputs(self) -> int:
        return 1

    def encode_raw(self, labels: Sequence[Any], origins: Sequence[str], what: str) -> np.ndarray:
        out = np.empty(len(labels), dtype=np.float64)
        for i, (lab, origin) in enumerate(zip(labels, origins)):
            x = as_number(lab)
            if x is None:
                raise ValueError(f"{what}: {origin}: target {lab!r} is not a number")
            out[i] = x
        return out

    def encode(self, labels: Sequence[Any], origins: Sequence[str], what: str = "data") -> np.ndarray:
        y = self.encode_raw(labels, origins, what)
        return ((y - self.mean_) / self.scale_).astype(np.float32)[:, None]  # (N, 1) standardised

    def values(self, logits: torch.Tensor) -> np.ndarray:
        return logits.double().numpy()[:, 0] * self.scale_ + self.mean_

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        return self.values(logits)

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        pred, target = output.logits.float(), batch["targets"].float()  # (N, 1) each, standardised
        if self.objective == "huber":
            return {"loss": F.huber_loss(pred, target, delta=self.huber_delta)}
        return {"loss": F.mse_loss(pred, target)}

    def metrics(self, targets: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        y = np.asarray(targets, dtype=np.float64).reshape(-1) * self.scale_ + self.mean_
        p = self.values(logits)
        n = len(y)
        m = {"n": int(n), "mae": float(mean_absolute_error(y, p)) if n else math.nan,
             "rmse": float(math.sqrt(mean_squared_error(y, p))) if n else math.nan,
             "r2": float(r2_score(y, p)) if n > 1 else math.nan,
             "loss": float(np.mean(((p - y) / self.scale_) ** 2)) if n else math.nan}
        m["score"] = -m["mae"]  # higher is better
        return m

    def format_metrics(self, m: dict[str, Any]) -> str:
        return f"MAE {m['mae']:.4g}   RMSE {m['rmse']:.4g}   R² {m['r2']:.4f}   (n={m['n']})"

    def headline(self, m: dict[str, Any]) -> tuple[str, float]:
        return "MAE", float(m["mae"])

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None) -> dict[str, Any] | None:
        if isinstance(head, PrototypeHead):
            raise ValueError("the prototype head needs classes; regression takes the linear or mlp head")
        if isinstance(head, LinearHead):
            info = fit_ridge(feats, targets, head, block_dims=block_dims, standardize=standardize)
            return {"what": f"ridge regression: alpha={info['alpha']:g}", "ridge_alpha": info["alpha"]}
        return None

    def state(self) -> dict[str, Any]:
        return {**super().state(), "mean": self.mean_, "scale": self.scale_}

    def load_state(self, state: dict[str, Any]) -> "RegressionTask":
        self.mean_, self.scale_ = float(state["mean"]), float(state["scale"])
        return self
