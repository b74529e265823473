"""``distillation``: a student learns from a fitted teacher's temperature-softened outputs and from
the true labels where there are any.

Reference: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
NIPS Deep Learning Workshop 2015 (arXiv:1503.02531). Per training row ``i``, with ``z`` the
student's logits, ``v`` the teacher's, ``T`` the temperature and ``y`` the true label:

    l_i = alpha * T^2 * KL(softmax(v_i / T) || softmax(z_i / T)) + (1 - alpha) * CE(z_i, y_i)

and the batch loss is the mean of ``l_i``. A row without a label (an extra unlabeled input of the
transfer set) has only the first term. ``T^2`` keeps the soft term's gradients on the scale of the
hard term's as ``T`` changes (Hinton et al., section 2).

The teacher is an extra input the trainer supplies (``needs = ("teacher",)``): a
``TeacherLogits``, which runs the teacher once per distinct input (keyed by the SHA-256 of the
input's content) and answers every later request from memory (and from a file, across runs), so
the teacher never runs again per epoch, nor for the final fit on all the labels, nor for another
student of the same teacher. ``training_rows`` joins the unlabeled inputs
to the labeled ones and puts the teacher's logits in the targets the loss reads:
``(N, 1 + C)``, column 0 the class index (-1: no label), columns 1.. the teacher's logits in the
student's class order. Evaluation rows keep plain class indices, so the metrics, the early
stopping and ``predict`` are classification's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from headstart.data._base import LabeledData
from headstart.data.modalities import digests
from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_probe
from headstart.tasks.classification import ClassificationTask


class TeacherLogits:
    """A teacher's logits per input, computed once. ``predict`` maps LabeledData to (N, C)
    logits in ``classes`` order; calling this object with data runs ``predict`` only on the
    inputs (by content) it has not seen, in one call, and returns (N, C) float32 rows from memory.
    ``store``: a safetensors file that keeps them across runs (name it after the teacher's weights:
    another teacher must never read them). ``calls`` / ``computed`` count the teacher's runs and
    the rows they produced."""

    def __init__(self, predict: Callable[[LabeledData], Any], classes: Sequence[Any], name: str = "teacher",
                 store: Path | None = None) -> None:
        self.predict = predict
        self.classes = list(classes)
        self.name = name
        self.store = store
        self.calls = 0
        self.computed = 0
        self._memo: dict[bytes, torch.Tensor] = {}
        if store is not None and store.is_file():
            try:
                saved = load_file(str(store))
            except Exception:  # a torn or foreign file is ignored, never trusted  # noqa: BLE001
                saved = {}
            if saved and saved["logits"].shape[1] == len(self.classes):
                self._memo = dict(zip((d.numpy().tobytes() for d in saved["digests"]), saved["logits"]))

    def __call__(self, data: LabeledData) -> torch.Tensor:  # -> (N, C)
        keys = digests(data.modality, data.items)
        todo: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._memo and k not in todo:
                todo[k] = i
        if todo:
            rows = torch.as_tensor(np.asarray(self.predict(data.subset(list(todo.values()))), dtype=np.float32))
            if rows.shape != (len(todo), len(self.classes)):
                raise ValueError(f"{self.name}: returned logits of shape {tuple(rows.shape)} for {len(todo)} "
                                 f"inputs, expected ({len(todo)}, {len(self.classes)})")
            if not torch.isfinite(rows).all():
                raise ValueError(f"{self.name}: returned non-finite logits")
            self.calls += 1
            self.computed += len(todo)
            self._memo.update(zip(todo, rows))
            self._save()
        if not keys:
            return torch.empty(0, len(self.classes))
        return torch.stack([self._memo[k] for k in keys])

    def _save(self) -> None:
        if self.store is None:
            return
        self.store.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.store.with_name(self.store.name + f".{os.getpid()}.tmp")
        save_file({"digests": torch.frombuffer(bytearray(b"".join(self._memo)), dtype=torch.uint8).reshape(-1, 32),
                   "logits": torch.stack(list(self._memo.values())).contiguous()}, str(tmp))
        os.replace(tmp, self.store)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, *, temperature: float,
                      alpha: float, label_smoothing: float = 0.0, weight: torch.Tensor | None = None
                      ) -> dict[str, torch.Tensor]:
    """Hinton et al.'s loss, averaged over the rows: ``student``/``teacher`` (N, C) logits,
    ``labels`` (N,) class indices with -1 where a row has no label (soft term only)."""
    t = float(temperature)
    log_p = F.log_softmax(student.float() / t, dim=1)  # (N, C)
    log_q = F.log_softmax(teacher.float() / t, dim=1)
    soft = (log_q.exp() * (log_q - log_p)).sum(1) * t * t  # (N,) T^2 KL(q || p)
    has = labels >= 0
    hard = torch.zeros_like(soft)
    if has.any():
        hard[has] = F.cross_entropy(student[has].float(), labels[has], reduction="none",
                                    weight=None if weight is None else weight.to(student.device),
                                    label_smoothing=label_smoothing)
    loss = (alpha * soft + (1.0 - alpha) * hard).mean()
    return {"loss": loss, "soft_loss": soft.mean().detach(),
            "hard_loss": (hard[has].mean() if has.any() else hard.sum()).detach()}


class DistillationTask(ClassificationTask):
    name = "distillation"
    needs = ("teacher",)
    unlabeled_rows = True

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5, label_smoothing: float = 0.0,
                 teacher_classes: list[Any] | None = None) -> None:
        super().__init__(label_smoothing=label_smoothing)
        self.temperature = temperature
        self.alpha = alpha
        self.teacher_classes = teacher_classes  # the teacher's classes (its outputs); None: from the labels

    def fit_targets(self, labels: Sequence[Any]) -> "DistillationTask":
        if not self.temperature > 0 or not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"distillation: temperature must be > 0 and alpha in [0, 1]; got "
                             f"temperature={self.temperature}, alpha={self.alpha}")
        super().fit_targets(self.teacher_classes if self.teacher_classes is not None else labels)
        return self

    def training_rows(self, data: LabeledData, targets: np.ndarray, extras: dict[str, Any]
                      ) -> tuple[LabeledData, np.ndarray]:
        """The labeled rows, then the unlabeled ones (``extras["unlabeled"]``, if any), with the
        targets ``[class index or -1, teacher logits...]`` (N, 1 + C) the loss reads."""
        teacher = extras["teacher"]
        order = [teacher.classes.index(c) if c in teacher.classes else -1 for c in self.classes_.tolist()]
        if sorted(order) != list(range(len(teacher.classes))):
            raise ValueError(f"distillation: the teacher's classes {teacher.classes[:20]} are not the student's "
                             f"{self.classes_.tolist()[:20]}")
        unlabeled = extras.get("unlabeled")
        labels = np.asarray(targets, dtype=np.int64).reshape(-1)
        if unlabeled is not None and len(unlabeled):
            data = LabeledData(list(data.items) + list(unlabeled.items), None, data.modality,
                               list(data.origins) + list(unlabeled.origins))
            labels = np.concatenate([labels, np.full(len(unlabeled), -1, dtype=np.int64)])
        logits = teacher(data)[:, order].numpy()  # (N, C) in the student's class order
        return data, np.concatenate([labels[:, None].astype(np.float32), logits], axis=1)

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        targets = batch["targets"]
        if targets.ndim == 1:  # plain class indices (rows not passed through training_rows)
            return super().loss(output, batch, progress)
        return distillation_loss(output.logits, targets[:, 1:], targets[:, 0].round().long(),
                                 temperature=self.temperature, alpha=self.alpha,
                                 label_smoothing=self.label_smoothing, weight=getattr(self, "class_weights_", None))

    def label_prompts(self, modality: str) -> list[str] | None:
        """No class-name prior: the teacher's outputs are the student's prior."""
        return None

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, *,
                 block_dims: list[int] | None, standardize: bool, balanced: bool, seed: int,
                 C: float | None = None) -> dict[str, Any] | None:
        """A linear head on cached features (a TF-IDF or frozen-encoder student): a logistic-regression
        probe on hard targets, the true label where there is one, else the teacher's argmax (the
        soft targets' mode; the soft loss itself trains it with ``solver='adamw'``). Other heads:
        None, trained with the distillation loss."""
        if targets.ndim != 2 or not isinstance(head, LinearHead):
            return None
        label = targets[:, 0].round().astype(np.int64)
        hard = np.where(label >= 0, label, targets[:, 1:].argmax(1))
        info = fit_probe(feats, hard, head, block_dims=block_dims, standardize=standardize, C=C,
                         balanced=balanced, seed=seed)
        return {"what": f"linear probe on {int((label >= 0).sum())} true labels and {int((label < 0).sum())} teacher "
                        f"argmax labels: C={info['C']:g}", "probe_C": info["C"]}
