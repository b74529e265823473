"""The methods ``headstart compare`` runs on the same splits, each a registered function:
baselines (majority class; a classic model trained from scratch — a small CNN for images,
TF-IDF + logistic regression for text; the backbone's own architecture from random
initialisation) and the transfer recipes (linear probe, prototypes and MLP head on cached
features, fine-tuning). A new method is one function plus one registration."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from headstart import recipes
from headstart._registry import Registry
from headstart.data._base import LabeledData
from headstart.evaluation.memory import PeakMemory
from headstart.evaluation.metrics import classification_metrics


@dataclass
class MethodRun:
    """One method on one training subset, scored on the test set."""

    metrics: dict[str, Any]
    seconds: float
    peak_mb: float
    proba: np.ndarray  # (n_test, C), columns follow ``classes``
    classes: list[Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    transfer: bool = True


Method = Callable[[LabeledData, LabeledData, dict[str, Any]], tuple[np.ndarray, list[Any], list[dict[str, Any]]]]
METHODS: Registry[tuple[Method, bool, str]] = Registry("compare method")


def _headstart(params: Callable[[str], dict[str, Any]]) -> Method:
    def run(train: LabeledData, test: LabeledData, base: dict[str, Any]):
        from headstart.api import Headstart

        est = Headstart(**{**base, **params(train.modality), "val_size": 0.0, "test_size": 0.0, "run": None,
                           "verbose": False}).fit(train)
        return est.predict_proba(test), est.classes_.tolist(), est.history_
    return run


def _majority(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    classes = sorted(set(train.labels), key=lambda v: (str(type(v)), v))
    counts = [train.labels.count(c) for c in classes]
    proba = np.zeros((len(test), len(classes)))
    proba[:, int(np.argmax(counts))] = 1.0
    return proba, classes, []


def _same_arch_scratch(train: LabeledData, test: LabeledData, base: dict[str, Any]):
    from headstart.api import DEFAULT_BACKBONES

    spec = base.get("backbone", "auto")
    spec = DEFAULT_BACKBONES[train.modality] if spec == "auto" else spec
    return _headstart(lambda m: {"backbone": recipes.scratch_spec(spec), **recipes.same_architecture_scratch(m)})(
        train, test, base)


for _name, _fn, _transfer, _what in [
    ("majority", _majority, False, "always the most frequent training class"),
    ("classic", _headstart(recipes.scratch), False,
     "small CNN from scratch (images) / TF-IDF 1-2-grams + logistic regression (text)"),
    ("scratch", _same_arch_scratch, False, "the backbone's architecture, randomly initialised, fine-tuned"),
    ("linear_probe", _headstart(lambda m: recipes.probe()), True, "logistic regression on cached pretrained features"),
    ("prototype", _headstart(lambda m: recipes.prototypes()), True, "nearest class mean on cached pretrained features (few-shot)"),
    ("mlp_head", _headstart(lambda m: recipes.mlp_head()), True, "MLP(1024) head on cached pretrained features"),
    ("fine_tuning", _headstart(recipes.fine_tuning), True, "the whole network fine-tuned (headstart's recipe)"),
]:
    METHODS.register(_name)((_fn, _transfer, _what))
DEFAULT_METHODS = ("majority", "classic", "scratch", "linear_probe", "prototype", "mlp_head", "fine_tuning")


def run_method(name: str, train: LabeledData, test: LabeledData, base: dict[str, Any]) -> MethodRun:
    """Fit ``name`` on train, score on test (labels as in the data), timing and peak memory."""
    fn, transfer, _ = METHODS.get(name)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        proba, classes, history = fn(train, test, base)
    seconds = time.perf_counter() - t0
    index = {c: i for i, c in enumerate(classes)}
    known = np.array([lab in index for lab in test.labels])
    y_true = np.array([index.get(lab, -1) for lab in test.labels])
    y_pred = proba.argmax(1)
    m = classification_metrics(y_true[known], y_pred[known], classes)
    m["accuracy"] = float(np.mean(y_pred == y_true))  # a test label unseen in training counts as wrong
    return MethodRun(m, seconds, mem.peak_mb, proba, list(classes), list(history), transfer)
