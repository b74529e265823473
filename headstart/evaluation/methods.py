"""The methods ``headstart compare`` runs on the same splits, each a registered ``Method`` that
says which tasks it supports: trivial baselines (the majority class; the training-target mean;
the label-frequency prior), a classic model trained from scratch (a small CNN for images —
headstart has no raw-pixel input, so for regression too; TF-IDF 1-2-grams with logistic
regression, ridge or one logistic regression per label for text; ROCKET for time series; log-mel statistics for audio), the
backbone's own architecture from random initialisation, and the transfer recipes (linear probe, prototypes and MLP head on
cached features, fine-tuning). A method returns its fitted task and its test outputs in that
task's encoding; ``run_method`` scores them with the task's own metrics. A new method is one
function plus one registration."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from headstart import recipes
from headstart._registry import Registry
from headstart.data._base import LabeledData
from headstart.evaluation.memory import PeakMemory
from headstart.evaluation.scoring import score_outputs

ALL_TASKS = ("classification", "multilabel", "regression")


@dataclass
class MethodRun:
    """One method on one training subset, scored on the test set by its task."""

    metrics: dict[str, Any]
    seconds: float
    peak_mb: float
    proba: np.ndarray | None  # (n_test, C) softmax / sigmoid, columns follow ``classes``; None for regression
    classes: list[Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    transfer: bool = True
    task: Any = None  # the fitted task (its label space, thresholds, target scale)
    predictions: np.ndarray | None = None  # (n_test,) the task's decoded predictions


# (train, test, base) -> (fitted task, (n_test, num_outputs) float tensor, training history)
MethodFn = Callable[[LabeledData, LabeledData, dict[str, Any]], tuple[Any, Any, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Method:
    fn: MethodFn
    transfer: bool
    what: str
    tasks: tuple[str, ...] = ALL_TASKS
    trivial: bool = False  # a floor every model must clear (majority, mean, prior): never "the scratch model"

    def supports(self, kind: str) -> bool:
        return kind in self.tasks


METHODS: Registry[Method] = Registry("compare method")


def fitted_task(train: LabeledData, base: dict[str, Any]) -> Any:
    """The task ``base`` names (``task``, ``task_params``; the separator from ``data``), fitted
    on the training labels — as the estimator would build it."""
    from headstart.tasks import build_task, detect_task

    sep = (base.get("data") or {}).get("label_separator", "|")
    name = base.get("task", "auto")
    if name == "auto":
        name, _ = detect_task(train.labels or [], sep)
    params = dict(base.get("task_params") or {})
    task = build_task(name, **params)
    if getattr(task, "separator", None) is not None and "separator" not in params:
        task.separator = sep
    return task.fit_targets(train.labels)


def _headstart(params: Callable[[str], dict[str, Any]]) -> MethodFn:
    def run(train: LabeledData, test: LabeledData, base: dict[str, Any]):
        import torch

        from headstart.api import Headstart

        est = Headstart(**{**base, **params(train.modality), "val_size": 0.0, "test_size": 0.0, "run": None,
                           "verbose": False}).fit(train)
        return est.task_, torch.as_tensor(est.decision_function(test), dtype=torch.float32), est.history_
    return run


def _constant(row: np.ndarray, n: int) -> Any:
    import torch

    return torch.as_tensor(np.tile(np.asarray(row, dtype=np.float32), (n, 1)))  # (n, num_outputs)


def _majority(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    """The most frequent training class for every example (logits: the log class frequencies)."""
    task = fitted_task(train, base)
    counts = np.array([train.labels.count(c) for c in task.classes], dtype=np.float64)
    return task, _constant(np.log(counts / counts.sum()), len(test)), []


def _mean(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    """The training-target mean for every example (0 in the task's standardised encoding)."""
    task = fitted_task(train, base)
    return task, _constant(np.zeros(task.num_outputs), len(test)), []


def prior_cutoff(y: np.ndarray) -> float:
    """The frequency cut-off that maximises micro-F1 on the (N, K) 0/1 training targets when
    every label at or above it is predicted for every example; the threshold returned lies
    halfway below the lowest frequency kept."""
    n, freq = len(y), y.mean(0)
    counts = y.sum(0)
    levels = np.unique(freq)[::-1]
    best, best_f1 = levels[0], -1.0
    for t in levels:
        on = freq >= t
        tp, fp, fn = counts[on].sum(), (n - counts[on]).sum(), counts[~on].sum()
        f1 = 2 * tp / max(1e-12, 2 * tp + fp + fn)
        if f1 > best_f1:
            best, best_f1 = t, f1
    lower = freq[freq < best]
    return float((best + (lower.max() if len(lower) else 0.0)) / 2)


def _prior(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    """Every label's training frequency as its probability for every example; labels at or above
    the cut-off chosen on the training set (``prior_cutoff``) are predicted."""
    task = fitted_task(train, base)
    y = task.encode(train.labels, train.origins, "train")
    freq = np.clip(y.mean(0), 1e-6, 1 - 1e-6)
    task.thresholds_ = np.full(task.num_outputs, prior_cutoff(y))
    return task, _constant(np.log(freq / (1 - freq)), len(test)), []


def _same_arch_scratch(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    from headstart.api import DEFAULT_BACKBONES

    spec = base.get("backbone", "auto")
    spec = DEFAULT_BACKBONES[train.modality] if spec == "auto" else spec
    return _headstart(lambda m: {"backbone": recipes.scratch_spec(spec), **recipes.same_architecture_scratch(m)})(
        train, test, base)


for _name, _method in [
    ("majority", Method(_majority, False, "always the most frequent training class", ("classification",), True)),
    ("mean", Method(_mean, False, "always the training-target mean", ("regression",), True)),
    ("prior", Method(_prior, False, "label frequencies, labels above a cut-off chosen on the training set",
                     ("multilabel",), True)),
    ("classic", Method(_headstart(recipes.scratch), False,
                       "small CNN from scratch (images; for every task: no raw-pixel input here) / TF-IDF 1-2-grams + "
                       "logistic regression, ridge (regression) or one logistic regression per label (text) / "
                       "ROCKET random kernels + the same heads (time series) / log-mel statistics + the same heads "
                       "(audio)")),
    ("scratch", Method(_same_arch_scratch, False, "the backbone's architecture, randomly initialised, fine-tuned")),
    ("linear_probe", Method(_headstart(lambda m: recipes.probe()), True,
                            "logistic regression / ridge / one logistic regression per label on cached pretrained "
                            "features")),
    ("prototype", Method(_headstart(lambda m: recipes.prototypes()), True,
                         "nearest class mean on cached pretrained features (few-shot)", ("classification",))),
    ("mlp_head", Method(_headstart(lambda m: recipes.mlp_head()), True,
                        "MLP(1024) head on cached pretrained features")),
    ("fine_tuning", Method(_headstart(recipes.fine_tuning), True, "the whole network fine-tuned (headstart's recipe)")),
]:
    METHODS.register(_name)(_method)
DEFAULT_METHODS = ("majority", "mean", "prior", "classic", "scratch", "linear_probe", "prototype", "mlp_head",
                   "fine_tuning")


def run_method(name: str, train: LabeledData, test: LabeledData, base: dict[str, Any]) -> MethodRun:
    """Fit ``name`` on train, score its outputs on test with the task's own metrics, timing and
    peak memory."""
    method = METHODS.get(name)
    kind = base.get("task")
    if kind in ALL_TASKS and not method.supports(kind):
        raise ValueError(f"compare method {name!r} is for {', '.join(method.tasks)}, not {kind}")
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        task, logits, history = method.fn(train, test, base)
    seconds = time.perf_counter() - t0
    m = score_outputs(task, test, logits)
    proba = task.predict_proba(logits) if task.proba else None
    return MethodRun(m, seconds, mem.peak_mb, proba, list(task.classes or []), list(history), method.transfer,
                     task, np.asarray(task.decode(logits)))
