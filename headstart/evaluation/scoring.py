"""Scoring ``compare``'s methods through their task, and the one number a comparison leads with.

Every method hands back its fitted task and its (N, num_outputs) outputs on the test set in that
task's encoding (logits; standardised values for regression); ``score_outputs`` scores them with
the task's own ``metrics``, so each task gets its own figures (accuracy and macro-F1; micro/macro
F1 and mAP; MAE, RMSE and R²). A test label the training subset never saw counts against the
method: a wrong prediction in classification, a label never predicted in multi-label.

``Headline`` says which metric a comparison reports (the task's ``headline``), in which units
(percent for fractions), and which way is better — read from the task's ``score`` (higher is
better), so MAE ranks lower-first without any task being named here.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# metrics that are fractions in [0, 1]: shown as percent (and their differences as points)
PERCENT = frozenset({"accuracy", "macro_f1", "micro_f1", "map", "subset_accuracy"})
LOWER_IS_BETTER = frozenset({"mae", "rmse", "loss", "mse", "error"})
SECONDARY = (("macro_f1", "macro-F1"), ("map", "mAP"), ("rmse", "RMSE"), ("r2", "R²"))
UNSEEN_LOGIT = -30.0  # a label the method never saw: never predicted (sigmoid ~ 1e-13)


def task_kind(task: Any) -> str:
    """classification | multilabel | regression | the task's own name: what ``compare``'s method
    registry is keyed by (a user's softmax task counts as classification)."""
    if task.name in ("classification", "multilabel", "regression"):
        return task.name
    return {"softmax": "classification", "sigmoid": "multilabel"}.get(task.proba, task.name)


def score_outputs(task: Any, test: Any, logits: Any) -> dict[str, Any]:
    """The task's metrics of ``logits`` (N, num_outputs) against ``test``'s labels."""
    kind = task_kind(task)
    if kind == "classification":
        return _classification(task, test, logits)
    if kind == "multilabel":
        return _multilabel(task, test, logits)
    return task.metrics(task.encode(test.labels, test.origins, "test"), logits)


def _classification(task: Any, test: Any, logits: Any) -> dict[str, Any]:
    """Metrics over the test labels the training subset knew; accuracy over all of them (a test
    label unseen in training counts as wrong)."""
    index = {c: i for i, c in enumerate(task.classes)}
    known = np.array([lab in index for lab in test.labels], dtype=bool)
    y_true = np.array([index.get(lab, -1) for lab in test.labels], dtype=np.int64)
    m = task.metrics(y_true[known], logits[known])
    m["accuracy"] = float(np.mean(logits.argmax(1).numpy() == y_true))
    m["score"] = m["accuracy"]
    return m


def _multilabel(task: Any, test: Any, logits: Any) -> dict[str, Any]:
    """Test labels unseen in training join the label space as never-predicted columns (false
    negatives in micro-F1, an F1 of 0 in macro-F1)."""
    import torch

    seen = set(task.classes)
    extra = sorted({v for lab in test.labels for v in task.split(lab)} - seen, key=lambda v: (str(type(v)), v))
    if extra:
        task = copy.copy(task)  # the method's task keeps its own label space
        task.classes_ = np.array([*task.classes_.tolist(), *extra], dtype=object)
        task.thresholds_ = np.concatenate([task.thresholds_, np.full(len(extra), 0.5)])
        logits = torch.cat([logits, torch.full((len(logits), len(extra)), UNSEEN_LOGIT)], 1)
    return task.metrics(task.encode(test.labels, test.origins, "test"), logits)


@dataclass(frozen=True)
class Headline:
    """The metric a comparison reports: its display name, its key in the metrics, the factor to
    display units (100 for fractions), +1 when higher is better (-1: lower), and the secondary
    columns (key, label) the task's metrics hold."""

    name: str = "accuracy"
    key: str = "accuracy"
    scale: float = 100.0
    direction: int = 1
    secondary: tuple[tuple[str, str], ...] = field(default=(("macro_f1", "macro-F1"),))

    @property
    def percent(self) -> bool:
        return self.scale == 100.0

    @property
    def unit(self) -> str:
        """What a difference is counted in: "points" (accuracy), "micro-F1 points", "MAE"."""
        if self.key == "accuracy":
            return "points"
        return f"{self.name} points" if self.percent else self.name

    @property
    def column(self) -> str:
        return f"{self.name} %" if self.percent else self.name

    def value(self, m: dict[str, Any]) -> float:
        """The headline of one run's metrics, in display units."""
        return self.scale * float(m[self.key])

    def secondary_scale(self, key: str) -> float:
        return 100.0 if key in PERCENT else 1.0

    def show(self, key: str, x: float) -> str:
        """A table cell of a metric in display units: percent and R² with fixed decimals,
        values in the target's own units (MAE, RMSE) with four significant digits."""
        if key in PERCENT:
            return f"{x:.2f}"
        return f"{x:.3f}" if key == "r2" else f"{x:.4g}"

    def fmt(self, x: float, signed: bool = False) -> str:
        """A difference or interval end: one decimal in points, three significant digits else."""
        if self.percent or abs(x) >= 100:
            return f"{x:+.1f}" if signed else f"{x:.1f}"
        return f"{x:+.3g}" if signed else f"{x:.3g}"

    def min_gain(self, reference: float) -> float:
        """The gain fine-tuning must show over the probe to be worth it: 1 point for percent
        metrics, else 1% of the probe's own value."""
        return 1.0 if self.percent else 0.01 * abs(reference)


def headline_for(task: Any, m: dict[str, Any]) -> Headline:
    """The ``Headline`` of ``task`` read from one of its metrics dicts: the name from
    ``task.headline``, the direction from ``score`` (score == -value: lower is better)."""
    name, value = task.headline(m)
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key not in m:
        key = next((k for k, v in m.items() if isinstance(v, float) and v == value), "score")
    if value != 0 and math.isclose(float(m.get("score", value)), -value, rel_tol=1e-9):
        direction = -1
    elif value != 0 and math.isclose(float(m.get("score", value)), value, rel_tol=1e-9):
        direction = 1
    else:
        direction = -1 if key in LOWER_IS_BETTER else 1
    scale = 100.0 if key in PERCENT else 1.0
    secondary = tuple((k, label) for k, label in SECONDARY if k in m and k != key)
    return Headline(name, key, scale, direction, secondary)
