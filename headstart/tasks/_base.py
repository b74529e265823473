"""The Task contract: what is learned, independent of how (the strategy) and of the loop (the
trainer).

A task owns
- the label space: ``fit_targets(labels)`` learns it (classes, target mean/scale, label set),
  ``encode`` turns labels into the tensors the loss reads, ``decode`` turns model outputs back
  into predictions in the data's own terms, ``num_outputs`` sizes the head;
- the loss: ``loss(output, batch, progress) -> {"loss": ..., **logged terms}``, with ``output`` a
  ``ModelOutput`` (features and logits), ``batch`` a dict (``inputs``, ``targets``, and what the
  task ``needs``), ``progress`` the fraction of training done (0..1, for schedules such as DANN's);
- evaluation: ``metrics(targets, logits)`` (a JSON-able dict with a ``score``, higher is better,
  which early stopping and the planner maximise) and ``format_metrics``;
- its own modules (``modules()``: a discriminator, a projection head), which the trainer puts in
  the optimizer, ``prepare``, checkpoints and bundles;
- closed-form shortcuts on cached features (``shortcut``: a logistic-regression probe, ridge,
  prototypes), offered per head; ``None`` means "train the head with the loss", never "fit it as
  a classifier anyway";
- ``head_after_body``: a task whose loss tunes only the body (contrastive pairs) returns the task
  that fits the head afterwards, on the tuned body's features; the trainer does so, and refuses
  a frozen-backbone strategy for it.

Constructors store parameters (scikit-learn's rule); learned state ends in ``_`` and travels in
``state()`` / ``from_state()`` (JSON, in the bundle).
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from headstart._params import Params
from headstart._registry import Registry
from headstart.data._base import LabeledData


class Task(Params):
    name: ClassVar[str] = ""
    # extra inputs the trainer must supply (e.g. "unlabeled", "teacher"); it refuses a run without them
    needs: ClassVar[tuple[str, ...]] = ()
    # True: the task adapts on cached features (frozen backbone); the trainer then passes the
    # unlabeled inputs' features to ``shortcut`` as ``unlabeled=``
    on_cached_features: ClassVar[bool] = False
    # True: the unlabeled inputs join the rows the loss trains on (``training_rows``: distillation),
    # so the backbone's preprocessing (a TF-IDF vocabulary, the input size) is fitted on them too
    unlabeled_rows: ClassVar[bool] = False
    # what predict_proba means for this task ("" : it has none)
    proba: ClassVar[str] = ""

    # -- label space -------------------------------------------------------------------
    def fit_targets(self, labels: Sequence[Any]) -> "Task":
        """Learn the label space from the training labels (and refuse labels it cannot learn)."""
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        raise NotImplementedError

    def encode(self, labels: Sequence[Any], origins: Sequence[str], what: str = "data") -> np.ndarray:
        """Labels -> the array the loss reads; an unusable label raises naming its row."""
        raise NotImplementedError

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        """(N, num_outputs) outputs -> predictions as labels appear in the data."""
        raise NotImplementedError

    def predict_proba(self, logits: torch.Tensor) -> np.ndarray:
        raise ValueError(f"task {self.name} has no class probabilities; use predict")

    # -- training ----------------------------------------------------------------------
    def modules(self, num_features: int) -> dict[str, nn.Module]:
        """Modules this task trains besides the model, built for the backbone's ``num_features``
        (none by default). The task keeps references to use them in its loss."""
        return {}

    def training_rows(self, data: LabeledData, targets: np.ndarray, extras: dict[str, Any]
                      ) -> tuple[LabeledData, np.ndarray]:
        """The rows the loss trains on, from the labeled training rows and the run's extra inputs
        (``extras``: what ``needs`` names, and ``unlabeled`` when given). By default the labeled
        rows as they are; distillation adds the unlabeled inputs and the teacher's outputs."""
        return data, targets

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Any:
        """The model's output for a training batch; a task with a second stream (domain
        adaptation) runs that stream through the model too."""
        return model(batch["inputs"])

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def set_class_weights(self, targets: np.ndarray) -> None:
        """Weight the loss against imbalance (tasks with classes); others ignore it."""

    def head_after_body(self) -> "Task | None":
        """None (default): the head trains with this task's loss, together with the body. A task
        whose loss reads only the features (the body's tuning) returns the task that fits the
        head after that tuning, on the tuned body's features (its shortcut, else its loss)."""
        return None

    def label_prompts(self, modality: str) -> list[str] | None:
        """Texts naming the classes whose features the shortcut receives as ``label_features``
        (a prior from the class names); None (default): none."""
        return None

    def after_fit(self, val_targets: np.ndarray | None, val_logits: torch.Tensor | None) -> None:
        """Tune what depends on held-out outputs (multi-label thresholds); nothing by default."""

    # -- evaluation --------------------------------------------------------------------
    def metrics(self, targets: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def format_metrics(self, m: dict[str, Any]) -> str:
        return "   ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))

    def headline(self, m: dict[str, Any]) -> tuple[str, float]:
        """The one number a report leads with: (name, value)."""
        return "score", float(m["score"])

    # -- closed-form shortcuts ---------------------------------------------------------
    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None) -> dict[str, Any] | None:
        """Fit ``head`` in closed form on cached features, returning what was chosen, or None
        when this task offers no shortcut for this head (the head is then trained)."""
        return None

    # -- persistence -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON: the task's name, parameters and learned label space."""
        return {"name": self.name, "params": self.get_params()}

    def load_state(self, state: dict[str, Any]) -> "Task":
        """Adopt the learned part of ``state`` (the parameters come through the constructor)."""
        return self

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Task":
        return cls(**state.get("params", {})).load_state(state)

    @property
    def classes(self) -> list[Any] | None:
        """Label names for tasks that have them (classification, multi-label)."""
        return None


class ClassesTask(Task):
    """A task whose outputs are named by classes (``classes_``, learned by ``fit_targets``)."""

    @property
    def classes(self) -> list[Any]:
        return self.classes_.tolist()

    @property
    def num_outputs(self) -> int:
        return len(self.classes_)

    def index_of(self, what: str) -> Any:
        """label -> output index, raising with the row's origin for a label never seen in training."""
        index = {c: i for i, c in enumerate(self.classes_.tolist())}

        def get(label: Any, origin: str) -> int:
            if label not in index:
                raise ValueError(f"{what}: {origin}: label {label!r} was not seen in training "
                                 f"(known: {', '.join(map(str, self.classes_[:20]))})")
            return index[label]
        return get


def softmax_np(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), dim=1).numpy()


TASKS: "Registry[type[Task]]" = Registry("task")


def task_from_state(state: dict[str, Any]) -> Task:
    """Rebuild a fitted task from ``Task.state()`` (the bundle's ``task`` entry); the task's
    class must be registered (``TASKS.register(name)``), a user's own included."""
    cls = TASKS.get(state["name"])
    return cls.from_state(state)
