"""Classification metrics (scikit-learn's): accuracy, macro-F1, per-class precision/recall/F1,
confusion matrix — as a JSON-able dict keyed by the class names as they appear in the data."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any]) -> dict[str, Any]:
    """``y_true``/``y_pred`` are class indices into ``classes``."""
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                               "support": int(s[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def format_metrics(m: dict[str, Any], classes: Sequence[Any]) -> str:
    """A short plain-text table for the terminal."""
    lines = [f"accuracy {m['accuracy']:.4f}   macro-F1 {m['macro_f1']:.4f}   (n={m['n']})",
             f"{'class':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for c in classes:
        pc = m["per_class"][str(c)]
        lines.append(f"{str(c)[:20]:<20} {pc['precision']:>9.3f} {pc['recall']:>7.3f} {pc['f1']:>6.3f} {pc['support']:>8d}")
    return "\n".join(lines)
