"""``multitask``: one backbone, several targets (e.g. a label column and a numeric column), each
with its own task. The head's outputs are split into one block per target (a linear head is then
one independent linear head per target on the shared features); the loss is the weighted sum of
the targets' losses; metrics are one table per target. Labels are tuples, one value per target,
in the order of ``tasks``."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from headstart.heads.linear import LinearHead
from headstart.tasks._base import Task, task_from_state


class MultiTask(Task):
    name = "multitask"

    def __init__(self, tasks: dict[str, Task] | None = None, weights: dict[str, float] | None = None) -> None:
        self.tasks = tasks
        self.weights = weights

    def _tasks(self) -> dict[str, Task]:
        if not self.tasks:
            raise ValueError("multitask needs tasks={'target name': task, ...} (one per label column)")
        return self.tasks

    def _column(self, labels: Sequence[Any], j: int, origins: Sequence[str] | None = None) -> list[Any]:
        n = len(self._tasks())
        out = []
        for i, lab in enumerate(labels):
            if not isinstance(lab, (tuple, list)) or len(lab) != n:
                where = origins[i] if origins is not None else f"item {i}"
                raise ValueError(f"{where}: multitask labels need {n} values ({', '.join(self._tasks())}), got {lab!r}")
            out.append(lab[j])
        return out

    def label_problem(self, label: Any) -> str | None:
        for j, task in enumerate(self._tasks().values()):
            check = getattr(task, "label_problem", None)
            problem = check(self._column([label], j)[0]) if check is not None else None
            if problem:
                return problem
        return None

    def fit_targets(self, labels: Sequence[Any]) -> "MultiTask":
        for j, task in enumerate(self._tasks().values()):
            task.fit_targets(self._column(labels, j))
        self.widths_ = [t.num_outputs for t in self._tasks().values()]
        return self

    @property
    def num_outputs(self) -> int:
        return int(sum(self.widths_))

    def _slices(self) -> list[slice]:
        edges = np.cumsum([0] + list(self.widths_))
        return [slice(int(a), int(b)) for a, b in zip(edges, edges[1:])]

    def encode(self, labels: Sequence[Any], origins: Sequence[str], what: str = "data") -> np.ndarray:
        cols = [np.asarray(t.encode(self._column(labels, j, origins), origins, what), dtype=np.float32)
                .reshape(len(labels), -1) for j, t in enumerate(self._tasks().values())]
        self.target_widths_ = [c.shape[1] for c in cols]
        return np.concatenate(cols, axis=1)  # (N, sum of target widths)

    def _split_targets(self, targets: Any) -> list[Any]:
        edges = np.cumsum([0] + list(self.target_widths_))
        return [targets[:, int(a):int(b)] for a, b in zip(edges, edges[1:])]

    def _sub(self, task: Task, targets: Any) -> Any:
        """A target block back in the form its task encodes (class indices are integers, (N,))."""
        if targets.shape[1] == 1 and task.proba == "softmax":
            return targets[:, 0].long() if torch.is_tensor(targets) else targets[:, 0].astype(np.int64)
        return targets

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        parts = [t.decode(logits[:, s]) for t, s in zip(self._tasks().values(), self._slices())]
        out = np.empty(len(logits), dtype=object)
        for i in range(len(logits)):
            out[i] = tuple(p[i] for p in parts)
        return out

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        total, logged = 0.0, {}
        for (name, task), s, target in zip(self._tasks().items(), self._slices(), self._split_targets(batch["targets"])):
            sub = task.loss(type(output)(output.features, output.logits[:, s]),
                            {**batch, "targets": self._sub(task, target)}, progress)["loss"]
            total = total + (self.weights or {}).get(name, 1.0) * sub
            logged[f"loss_{name}"] = sub.detach()
        return {"loss": total, **logged}

    def set_class_weights(self, targets: np.ndarray) -> None:
        for task, target in zip(self._tasks().values(), self._split_targets(targets)):
            task.set_class_weights(self._sub(task, target))

    def after_fit(self, val_targets: np.ndarray | None, val_logits: torch.Tensor | None) -> None:
        if val_targets is None or val_logits is None:
            return
        for task, s, target in zip(self._tasks().values(), self._slices(), self._split_targets(val_targets)):
            task.after_fit(self._sub(task, target), val_logits[:, s])

    def metrics(self, targets: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        per = {name: task.metrics(self._sub(task, target), logits[:, s])
               for (name, task), s, target in zip(self._tasks().items(), self._slices(), self._split_targets(targets))}
        return {"n": int(len(targets)), "targets": per,
                "score": -float(np.mean([m["loss"] for m in per.values()])),  # losses are on comparable scales
                "loss": float(np.mean([m["loss"] for m in per.values()]))}

    def format_metrics(self, m: dict[str, Any]) -> str:
        return "\n".join(f"[{name}] {task.format_metrics(m['targets'][name])}" for name, task in self._tasks().items())

    def headline(self, m: dict[str, Any]) -> tuple[str, float]:
        name, task = next(iter(self._tasks().items()))
        label, value = task.headline(m["targets"][name])
        return f"{name} {label}", value

    def shortcut(self, head: nn.Module, feats: torch.Tensor, targets: np.ndarray, **kw: Any) -> dict[str, Any] | None:
        """Each target's own shortcut on a linear head of its width, copied into its block."""
        if not isinstance(head, LinearHead) or type(head) is not LinearHead:
            return None
        whats = []
        for (name, task), s, target in zip(self._tasks().items(), self._slices(), self._split_targets(targets)):
            part = LinearHead(head.num_features, s.stop - s.start)
            info = task.shortcut(part, feats, self._sub(task, target), **kw)
            if info is None:
                return None
            with torch.no_grad():
                head.fc.weight[s] = part.fc.weight
                head.fc.bias[s] = part.fc.bias
            whats.append(f"{name}: {info['what']}")
        return {"what": "; ".join(whats)}

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "params": {"weights": self.weights},
                "tasks": {name: {**t.state(), "target_width": w} for (name, t), w in
                          zip(self._tasks().items(), getattr(self, "target_widths_", [None] * len(self._tasks())))}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "MultiTask":
        return cls(weights=state.get("params", {}).get("weights")).load_state(state)

    def load_state(self, state: dict[str, Any]) -> "MultiTask":
        self.tasks = {name: task_from_state(s) for name, s in state["tasks"].items()}
        self.widths_ = [t.num_outputs for t in self.tasks.values()]
        self.target_widths_ = [s["target_width"] for s in state["tasks"].values()]
        return self
