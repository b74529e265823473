"""Tasks: what is learned (the label space, the loss, the metrics), one file each, registered by
name. A new task is one file with a ``Task`` subclass plus one ``TASKS.register`` call — in this
package or in the user's own code (see the README's focal-loss example)."""
from __future__ import annotations

from typing import Any, Sequence

from headstart.tasks._base import TASKS, Task, task_from_state
from headstart.tasks.adaptation import ADAPTATION_TASKS
from headstart.tasks.classification import ClassificationTask
from headstart.tasks.contrastive import ContrastiveTask
from headstart.tasks.distillation import DistillationTask
from headstart.tasks.multilabel import MultiLabelTask
from headstart.tasks.multitask import MultiTask
from headstart.tasks.regression import RegressionTask, as_number

for _cls in (ClassificationTask, MultiLabelTask, RegressionTask, MultiTask, ContrastiveTask, DistillationTask,
             *ADAPTATION_TASKS):
    TASKS.register(_cls.name)(_cls)


def build_task(task: "str | Task", **params: Any) -> Task:
    """A Task instance from an instance (returned as is), or a registered name with parameters.
    ``"classification,regression"`` builds a multitask with one target per label column, named
    ``t0, t1, ...`` unless ``names`` is given."""
    if isinstance(task, Task):
        return task.set_params(**params) if params else task
    if "," in task:
        kinds = [k.strip() for k in task.split(",")]
        names = list(params.pop("names", None) or [f"t{i}" for i in range(len(kinds))])
        if len(names) != len(kinds):
            raise ValueError(f"{len(kinds)} tasks but {len(names)} target names")
        return MultiTask({n: build_task(k) for n, k in zip(names, kinds)}, **params)
    return TASKS.get(task)(**params)


def detect_task(labels: Sequence[Any], separator: str = "|") -> tuple[str, str]:
    """(task name, the reason said aloud): numbers with many distinct values are a regression
    target; cells holding the separator (or lists) are multi-label; anything else classification."""
    values = [v for v in labels if v is not None]
    if not values:
        return "classification", "no labels to inspect"
    if all(isinstance(v, (list, tuple, set)) for v in values) or (
            all(isinstance(v, str) for v in values) and sum(separator in v for v in values) >= max(1, len(values) // 20)):
        return "multilabel", (f"label cells hold several labels separated by {separator!r}: multilabel; "
                              "pass --task classification to override")
    numbers = [as_number(v) for v in values]
    distinct = len(set(numbers))
    if all(x is not None for x in numbers) and distinct > max(20, len(values) // 10):
        return "regression", (f"label column holds numbers with {distinct} distinct values: regression; "
                              "pass --task classification to override")
    return "classification", f"{len(set(map(str, values)))} distinct labels: classification"


__all__ = ["TASKS", "ClassificationTask", "ContrastiveTask", "DistillationTask", "MultiLabelTask", "MultiTask", "RegressionTask", "Task",
           "build_task", "detect_task", "task_from_state"]
