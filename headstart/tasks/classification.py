"""``classification``: one label per example, softmax cross-entropy (label smoothing, class
weights against imbalance), accuracy / macro-F1 / per-class metrics; on cached features a
linear head is a logistic-regression probe and a prototype head the class means."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headstart.evaluation.metrics import classification_metrics, format_metrics
from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_probe
from headstart.heads.prototype import PrototypeHead
from headstart.tasks._base import ClassesTask, softmax_np


def sort_labels(labels: Sequence[Any]) -> list[Any]:
    """Distinct labels in a stable order (by type, then value): the class index order."""
    return sorted(set(labels), key=lambda v: (str(type(v)), v))


def balanced_weights(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (scikit-learn's 'balanced'), 0 for absent classes."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(targets) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


class ClassificationTask(ClassesTask):
    name = "classification"
    proba = "softmax"

    def __init__(self, label_smoothing: float = 0.1) -> None:
        self.label_smoothing = label_smoothing

    def fit_targets(self, labels: Sequence[Any]) -> "ClassificationTask":
        self.classes_ = np.array(sort_labels(labels), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError(f"only one class ({self.classes_[0]!r}) in the training data: "
                             "classification needs at least two")
        self.class_weights_: torch.Tensor | None = None
        return self

    def encode(self, labels: Sequence[Any], origins: Sequence[str], what: str = "data") -> np.ndarray:
        get = self.index_of(what)
        return np.array([get(lab, origin) for lab, origin in zip(labels, origins)], dtype=np.int64)

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        return self.classes_[logits.argmax(1).numpy()]

    def predict_proba(self, logits: torch.Tensor) -> np.ndarray:
        return softmax_np(logits)

    def set_class_weights(self, targets: np.ndarray) -> None:
        self.class_weights_ = balanced_weights(targets, self.num_outputs)

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        logits = output.logits.float()  # (N, C)
        w = getattr(self, "class_weights_", None)
        loss = F.cross_entropy(logits, batch["targets"], weight=None if w is None else w.to(logits.device),
                               label_smoothing=self.label_smoothing)
        return {"loss": loss}

    def metrics(self, targets: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        pred = logits.argmax(1).numpy()
        m = classification_metrics(targets, pred, self.classes_.tolist())
        m["loss"] = float(F.cross_entropy(logits.float(), torch.as_tensor(targets))) if len(targets) else 0.0
        m["score"] = m["accuracy"]
        return m

    def format_metrics(self, m: dict[str, Any]) -> str:
        return format_metrics(m, self.classes_)

    def headline(self, m: dict[str, Any]) -> tuple[str, float]:
        return "accuracy", float(m["accuracy"])

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None) -> dict[str, Any] | None:
        if isinstance(head, PrototypeHead):  # computed from class means, nothing to train
            info = head.fit_prototypes(feats, targets, block_dims)
            return {"what": f"prototypes: logit scale {info['scale']:g}, train accuracy "
                            f"{info['train_accuracy']:.3f}", "prototype_scale": info["scale"]}
        if isinstance(head, LinearHead):
            info = fit_probe(feats, targets, head, block_dims=block_dims, standardize=standardize, C=C,
                             balanced=balanced, seed=seed)
            cv = info["cv_accuracy"]
            return {"what": f"linear probe: C={info['C']:g}" + (f", CV accuracy {cv:.3f}" if cv is not None else ""),
                    "probe_C": info["C"], "probe_cv_accuracy": cv}
        return None

    def state(self) -> dict[str, Any]:
        return {**super().state(), "classes": self.classes_.tolist()}

    def load_state(self, state: dict[str, Any]) -> "ClassificationTask":
        self.classes_ = np.array(state["classes"], dtype=object)
        self.class_weights_ = None
        return self
