"""One JSON-ready record per input, decoded from the model's outputs once (labels and
probabilities from the same forward pass), and its flat form for a CSV row."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from headstart.tasks._base import Task


def _py(v: Any) -> Any:
    """numpy scalars and tuples as plain JSON values."""
    if isinstance(v, tuple):
        return [_py(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def records(task: Task, logits: torch.Tensor) -> list[dict[str, Any]]:
    """Per input: ``label`` + ``probabilities`` (classification), ``labels`` + ``probabilities``
    (multi-label), ``value`` (regression), ``outputs`` by target name (multitask)."""
    pred = task.decode(logits)
    proba = task.predict_proba(logits) if task.proba else None
    classes = [_py(c) for c in task.classes_] if proba is not None else []
    out = []
    for i, p in enumerate(pred):
        if task.name == "multitask":
            rec: dict[str, Any] = {"outputs": {name: _py(v) for name, v in zip(task.tasks, p)}}
        elif task.proba == "sigmoid":
            rec = {"labels": _py(tuple(p))}
        elif task.proba:
            rec = {"label": _py(p)}
        else:
            rec = {"value": float(p)}
        if proba is not None:
            rec["probabilities"] = {str(c): float(v) for c, v in zip(classes, proba[i])}
        out.append(rec)
    return out


def flat_row(item: str, record: dict[str, Any], label_sep: str = "|") -> dict[str, Any]:
    """A record as one CSV row: ``input``, the prediction column(s), then ``p_<class>``."""
    row: dict[str, Any] = {"input": item}
    if "outputs" in record:
        row.update(record["outputs"])
    elif "labels" in record:
        row["label"] = label_sep.join(map(str, record["labels"]))
    elif "label" in record:
        row["label"] = record["label"]
    else:
        row["value"] = record["value"]
    row.update({f"p_{c}": v for c, v in record.get("probabilities", {}).items()})
    return row
