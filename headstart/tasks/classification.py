"""``classification``: one label per example, softmax cross-entropy (label smoothing, class
weights against imbalance), accuracy / macro-F1 / per-class metrics; on cached features a
linear head is a logistic-regression probe and a prototype head the class means. For text
whose class names are words, the probe gets the names' zero-shot scores as a prior, weighed by
cross-validation on the training labels (``label_prior``; ``headstart.heads.label_prior``)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headstart.evaluation.metrics import classification_metrics, format_metrics
from headstart.heads.label_prior import add_label_prior, are_words, prompt_texts
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

    def __init__(self, label_smoothing: float = 0.1, label_prior: "bool | str" = "auto") -> None:
        self.label_smoothing = label_smoothing
        self.label_prior = label_prior  # "auto": on for text whose class names are words

    def fit_targets(self, labels: Sequence[Any]) -> "ClassificationTask":
        self.classes_ = np.array(sort_labels(labels), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError(f"only one class ({self.classes_[0]!r}) in the training data: "
                             "classification needs at least two")
        if self.label_prior not in ("auto", True, False):
            raise ValueError(f"label_prior must be 'auto', True or False, got {self.label_prior!r}")
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

    def label_prompts(self, modality: str) -> list[str] | None:
        """The class names in prompts, for the probe's prior: text only, and under ``auto`` only
        when every class name is a word or words (``True`` refuses names that are not)."""
        if self.label_prior is False or modality != "text":
            if self.label_prior is True and modality != "text":
                raise ValueError(f"label_prior=True uses the class names' text; this data is {modality}")
            return None
        if not are_words(self.classes_.tolist()):
            if self.label_prior is True:
                raise ValueError(f"label_prior=True: the class names {self.classes_.tolist()[:10]} are not all "
                                 "words (codes and numbers say nothing to a text encoder); rename the labels")
            return None
        return prompt_texts(self.classes_.tolist())

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None, label_features: torch.Tensor | None = None) -> dict[str, Any] | None:
        if isinstance(head, PrototypeHead):  # computed from class means, nothing to train
            info = head.fit_prototypes(feats, targets, block_dims)
            return {"what": f"prototypes: logit scale {info['scale']:g}, train accuracy "
                            f"{info['train_accuracy']:.3f}", "prototype_scale": info["scale"]}
        if isinstance(head, LinearHead):
            info = fit_probe(feats, targets, head, block_dims=block_dims, standardize=standardize, C=C,
                             balanced=balanced, seed=seed)
            cv = info["cv_accuracy"]
            out = {"what": f"linear probe: C={info['C']:g}" + (f", CV accuracy {cv:.3f}" if cv is not None else ""),
                   "probe_C": info["C"], "probe_cv_accuracy": cv}
            if label_features is not None:
                out.update(self._prior(head, feats, targets, label_features, block_dims=block_dims,
                                       standardize=standardize, balanced=balanced, seed=seed, C=info["C"]))
                out["what"] += f"; class names as a prior: {out['label_prior']}"
            return out
        return None

    def _prior(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, label_features: torch.Tensor,
               *, C: float, seed: int, **probe: Any) -> dict[str, Any]:
        """Add the class names' zero-shot scores to the fitted probe, weighed by CV (folds
        refit the probe at the chosen C)."""
        info = add_label_prior(head, feats, targets, label_features, seed=seed,
                               fit=lambda f, t, h: fit_probe(f, t, h, C=C, seed=seed, **probe))
        if "why" in info:
            return {"label_prior": f"off ({info['why']})", "label_prior_weight": 0.0}
        what = (f"weight {info['weight']:g} (CV log-loss {info['cv_log_loss']:.3f} -> {info['cv_log_loss_with']:.3f})"
                if info["weight"] else f"weight 0 (no CV gain; log-loss {info['cv_log_loss']:.3f})")
        return {"label_prior": what, "label_prior_weight": info["weight"]}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "classes": self.classes_.tolist()}

    def load_state(self, state: dict[str, Any]) -> "ClassificationTask":
        self.classes_ = np.array(state["classes"], dtype=object)
        self.class_weights_ = None
        return self
