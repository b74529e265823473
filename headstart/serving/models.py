"""The served models: each bundle loaded once, with what ``GET /v1/models`` says about it and the
function the batcher runs."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from headstart.data._base import LabeledData
from headstart.inference.records import records
from headstart.serving.batcher import MicroBatcher

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of each split (no matrices or per-class tables)."""
    out: dict[str, Any] = {}
    for split, m in (metrics or {}).items():
        if isinstance(m, dict):
            out[split] = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return out


@dataclass
class ServedModel:
    """A loaded bundle under ``name``."""

    name: str
    path: Path
    estimator: Any
    batcher: MicroBatcher = field(init=False)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"model name {self.name!r}: use letters, digits, '.', '_' or '-' (max 64)")

    @property
    def modality(self) -> str:
        return self.estimator.modality_

    @property
    def sampling_rate(self) -> int:
        """The rate an audio model's clips are resampled to (its checkpoint's); 16 kHz otherwise."""
        cfg = getattr(getattr(self.estimator.model_, "backbone", None), "pretrained_cfg", None)
        return int(getattr(cfg, "sampling_rate", 16000))

    def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        """Records for ``items`` (PIL images, texts, or waveforms at ``sampling_rate``), in one forward pass."""
        data = LabeledData(list(items), None, self.modality)
        return records(self.estimator.task_, torch.from_numpy(self.estimator.decision_function(data)))

    def info(self) -> dict[str, Any]:
        meta = self.estimator.meta_
        bb = meta.get("backbone", {})
        task = self.estimator.task_
        return {
            "name": self.name,
            "task": task.name,
            "modality": self.modality,
            "labels": [str(c) for c in task.classes_] if task.proba else [],
            "backbone": bb.get("spec"),
            "licence": bb.get("pretrained_cfg", {}).get("license", "unknown"),
            "strategy": (meta.get("strategy") or {}).get("name"),
            "metrics": _scalars(meta.get("metrics", {})),
        }

    def card(self) -> str:
        p = self.path / "README.md"
        return p.read_text(encoding="utf-8") if p.exists() else ""


def load_models(bundles: dict[str, str | Path], device: str | None = None) -> dict[str, ServedModel]:
    """Every bundle loaded (once) under its name; a missing or broken bundle fails here, naming it."""
    from headstart.api import load

    out = {}
    for name, path in bundles.items():
        path = Path(path)
        if not (path / "headstart.json").exists():
            raise FileNotFoundError(f"{path}: not a headstart bundle (no headstart.json)")
        out[name] = ServedModel(name, path, load(path, device=device))
    return out
