"""``multilabel``: any number of labels per example (a CSV cell ``"cat|outdoor"``, the separator
configurable, or a JSONL list). One sigmoid per label with binary cross-entropy; per-label
decision thresholds tuned for F1 on the validation split, or on cross-validated
predictions when the linear head is fitted in closed form (0.5 otherwise); micro and
macro F1, mean average precision (threshold-free) and subset accuracy; on cached features a
linear head is one logistic regression per label."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_one_vs_rest
from headstart.heads.prototype import PrototypeHead
from headstart.tasks._base import ClassesTask
from headstart.tasks.classification import sort_labels


class MultiLabelTask(ClassesTask):
    name = "multilabel"
    proba = "sigmoid"

    def __init__(self, separator: str = "|", threshold: float = 0.5, tune_thresholds: bool = True) -> None:
        self.separator = separator
        self.threshold = threshold
        self.tune_thresholds = tune_thresholds

    def split(self, label: Any) -> tuple[Any, ...]:
        """One cell -> its labels: lists/tuples/sets as they are, strings split on the separator."""
        if isinstance(label, (list, tuple, set, frozenset)):
            parts = list(label)
        elif isinstance(label, str):
            parts = [p.strip() for p in label.split(self.separator)]
        else:
            parts = [label]
        return tuple(p for p in parts if not (isinstance(p, str) and not p))

    def fit_targets(self, labels: Sequence[Any]) -> "MultiLabelTask":
        self.classes_ = np.array(sort_labels(v for lab in labels for v in self.split(lab)), dtype=object)
        if len(self.classes_) < 1:
            raise ValueError("multilabel: no labels in the training data")
        self.thresholds_ = np.full(len(self.classes_), float(self.threshold))
        return self

    def encode(self, labels: Sequence[Any], origins: Sequence[str], what: str = "data") -> np.ndarray:
        get = self.index_of(what)
        out = np.zeros((len(labels), self.num_outputs), dtype=np.float32)  # (N, K) multi-hot
        for i, (lab, origin) in enumerate(zip(labels, origins)):
            for v in self.split(lab):
                out[i, get(v, origin)] = 1.0
        return out

    def predict_proba(self, logits: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(logits.float()).numpy()

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        on = self.predict_proba(logits) >= self.thresholds_
        out = np.empty(len(on), dtype=object)
        for i, row in enumerate(on):
            out[i] = tuple(self.classes_[row].tolist())
        return out

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        return {"loss": F.binary_cross_entropy_with_logits(output.logits.float(), batch["targets"].float())}

    def after_fit(self, val_targets: np.ndarray | None, val_logits: torch.Tensor | None) -> None:
        """Per label, the threshold that maximises F1 on the validation outputs."""
        if not self.tune_thresholds or val_targets is None or val_logits is None or len(val_targets) == 0:
            return
        self._tune(np.asarray(val_targets) > 0.5, self.predict_proba(val_logits))

    def _tune(self, y: np.ndarray, p: np.ndarray) -> None:
        """Set each label's threshold to the F1-best one on (y, p); labels without positives, or
        without scores (NaN), keep theirs."""
        grid = np.linspace(0.05, 0.95, 19)
        for k in range(p.shape[1]):
            ok = np.isfinite(p[:, k])
            yk, pk = y[ok, k], p[ok, k]
            if not yk.any():
                continue
            f1 = [2 * np.sum(yk & (pk >= t)) / max(1, yk.sum() + np.sum(pk >= t)) for t in grid]
            self.thresholds_[k] = float(grid[int(np.argmax(f1))])

    def metrics(self, targets: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        from sklearn.metrics import (
            average_precision_score,
            f1_score,
            precision_recall_fscore_support,
        )

        y = np.asarray(targets) > 0.5
        p = self.predict_proba(logits)
        pred = p >= self.thresholds_
        present = y.any(0) & ~y.all(0)  # AP is defined for labels with both outcomes
        m: dict[str, Any] = {
            "n": int(len(y)),
            "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "map": float(average_precision_score(y[:, present], p[:, present], average="macro"))
            if present.any() else float("nan"),
            "subset_accuracy": float(np.mean(np.all(y == pred, axis=1))) if len(y) else 0.0,
            "loss": float(F.binary_cross_entropy_with_logits(logits.float(), torch.as_tensor(y, dtype=torch.float32)))
            if len(y) else 0.0,
        }
        pr, rc, f, s = precision_recall_fscore_support(y, pred, zero_division=0)
        m["per_label"] = {str(c): {"precision": float(pr[k]), "recall": float(rc[k]), "f1": float(f[k]),
                                   "support": int(s[k]), "threshold": float(self.thresholds_[k])}
                          for k, c in enumerate(self.classes_)}
        m["score"] = m["map"] if np.isfinite(m["map"]) else m["micro_f1"]
        return m

    def format_metrics(self, m: dict[str, Any]) -> str:
        lines = [f"micro-F1 {m['micro_f1']:.4f}   macro-F1 {m['macro_f1']:.4f}   mAP {m['map']:.4f}   "
                 f"subset accuracy {m['subset_accuracy']:.4f}   (n={m['n']})",
                 f"{'label':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8} {'thresh':>7}"]
        for c, pc in m["per_label"].items():
            lines.append(f"{c[:20]:<20} {pc['precision']:>9.3f} {pc['recall']:>7.3f} {pc['f1']:>6.3f} "
                         f"{pc['support']:>8d} {pc['threshold']:>7.2f}")
        return "\n".join(lines)

    def headline(self, m: dict[str, Any]) -> tuple[str, float]:
        return "micro-F1", float(m["micro_f1"])

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None) -> dict[str, Any] | None:
        if isinstance(head, PrototypeHead):
            raise ValueError("the prototype head needs one class per example; multilabel takes linear or mlp")
        if isinstance(head, LinearHead):
            info = fit_one_vs_rest(feats, targets, head, block_dims=block_dims, C=C, balanced=balanced,
                                   standardize=standardize, seed=seed)
            tuned = ""
            if self.tune_thresholds and np.isfinite(info["oof"]).any():
                self._tune(np.asarray(targets) > 0.5, info["oof"])  # a validation split, if any, re-tunes them
                tuned = "; thresholds tuned on out-of-fold predictions"
            return {"what": f"one logistic regression per label (median C={info['C']:g}, by CV{tuned})",
                    "probe_C": info["C"]}
        return None

    def state(self) -> dict[str, Any]:
        return {**super().state(), "classes": self.classes_.tolist(), "thresholds": self.thresholds_.tolist()}

    def load_state(self, state: dict[str, Any]) -> "MultiLabelTask":
        self.classes_ = np.array(state["classes"], dtype=object)
        self.thresholds_ = np.asarray(state["thresholds"], dtype=np.float64)
        return self
