"""The estimator's small config objects: what a user rarely tunes, grouped and validated once.

- ``Runtime``: where and how fast (device, mixed precision, torch.compile, DataLoader workers,
  batch size, feature-cache directory);
- ``RunOptions``: what the run leaves behind (bundle directory ``out``, ``resume``, checkpoint
  frequency, a per-step callback);
- ``DataSpec``: how to read the data (column names, the multi-label separator, what to do with
  bad samples).

Each accepts an instance, a plain dict, or None (defaults): ``Headstart(runtime={"device":
"cpu"})``. Nested names work in ``set_params`` as in scikit-learn: ``runtime__batch_size=64``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, TypeVar

C = TypeVar("C", bound="_Config")


class _Config:
    @classmethod
    def coerce(cls: type[C], value: "C | dict[str, Any] | None") -> C:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
            unknown = sorted(set(value) - names)
            if unknown:
                raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known: {', '.join(sorted(names))}")
            return cls(**value)
        raise TypeError(f"{cls.__name__}: expected a {cls.__name__}, a dict or None, got {type(value).__name__}")

    def replace(self: C, **changes: Any) -> C:
        return replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if not callable(v)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class Runtime(_Config):
    device: str | None = None  # "cpu" forces the CPU; default: the first GPU when there is one
    mixed_precision: str = "auto"  # auto | no | bf16 | fp16
    compile: bool = False  # torch.compile (inductor) through Accelerate: long GPU runs only
    num_workers: int | str = 0  # DataLoader workers, or "auto"
    batch_size: int = 32
    cache_dir: str | Path | None | bool = None  # feature cache; False: none

    def __post_init__(self) -> None:
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}")
        if not (self.num_workers == "auto" or (isinstance(self.num_workers, int) and self.num_workers >= 0)):
            raise ValueError(f"num_workers must be a count >= 0 or 'auto', got {self.num_workers!r}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}")


@dataclass(frozen=True)
class RunOptions(_Config):
    out: str | Path | None = None  # bundle (+ report, checkpoints, logs) directory
    resume: bool = False  # continue from the last checkpoint in out/checkpoints
    checkpoint_every: int | None = None  # also checkpoint every N optimizer steps
    on_step: Callable[[dict[str, Any]], None] | None = None  # called after each optimizer step
    # with unlabeled target data: the shift test before training and the adaptation summary after
    # (the planner's runs skip both: it tests once, and compares its rungs itself)
    check_shift: bool = True
    # keep the training inputs' feature reference for predict's input check (``reference_``); the
    # planner's trial runs skip it (a pass of the backbone over up to 256 inputs): only the model it returns needs one
    reference: bool = True

    def __post_init__(self) -> None:
        if self.checkpoint_every is not None and int(self.checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every!r}")
        if self.resume and self.out is None:
            raise ValueError("resume needs out= (the checkpoints live in OUT/checkpoints)")


@dataclass(frozen=True)
class DataSpec(_Config):
    text_column: str = "text"
    path_column: str = "path"
    label_column: str = "label"  # several targets (multitask): "genre,price"
    label_separator: str = "|"  # multi-label cells: "cat|outdoor"
    on_bad_sample: str = "skip"  # skip (and list) | fail

    def __post_init__(self) -> None:
        if self.on_bad_sample not in ("skip", "fail"):
            raise ValueError(f"on_bad_sample must be skip or fail, got {self.on_bad_sample!r}")
        if not self.label_separator:
            raise ValueError("label_separator must not be empty")

    @property
    def columns(self) -> dict[str, str]:
        return {"text_column": self.text_column, "path_column": self.path_column, "label_column": self.label_column}

    @property
    def label_columns(self) -> list[str]:
        return [c.strip() for c in self.label_column.split(",") if c.strip()]
