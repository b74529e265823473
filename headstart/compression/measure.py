"""What ``headstart compress`` measures for each model, on the same prepared inputs: accuracy
with its 95% interval, size on disk, parameters, CPU latency per item at batch 1 and batch 32,
throughput. A model is measured through a *runner*: prepared batch -> logits (numpy), so a
PyTorch bundle and an onnxruntime session are timed the same way."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from headstart.data._base import LabeledData
from headstart.data.loaders import make_loader
from headstart.export.card import wilson_interval

Runner = Callable[[Any], np.ndarray]


@dataclass
class Inputs:
    """The evaluation data prepared once: batches of 32 (accuracy, batch-32 latency) and single
    items (batch-1 latency), with the true class index of every item."""
    batches: list[Any]
    singles: list[Any]
    targets: np.ndarray  # (N,) class indices


@dataclass
class Measurement:
    name: str
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    size_bytes: int
    parameters: int
    ms_batch1: float  # per item
    ms_batch32: float  # per item
    items_per_s: float  # at batch 32
    folder: str
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_inputs(est: Any, data: LabeledData, n_single: int = 32) -> Inputs:
    """``data`` read with the bundle's preprocessing; the labels encoded by its task."""
    if est.task_.proba != "softmax":
        raise ValueError(f"compress measures accuracy: it takes single-label classification bundles, "
                         f"not {est.task_.name}")
    if data.labels is None or not len(data):
        raise ValueError("compress needs labeled evaluation data (--data): none found")
    targets = np.asarray(est.task_.encode(data.labels, data.origins, "evaluation data"))
    bb = est.model_.backbone

    def batches(d: LabeledData, size: int) -> list[Any]:
        return [b["inputs"] for b in make_loader(d, None, bb.pretrained_cfg, bb.tokenizer(), train=False,
                                                 batch_size=size)]
    return Inputs(batches(data, 32), batches(data.subset(range(min(n_single, len(data)))), 1), targets)


def torch_runner(model: torch.nn.Module, dtype: torch.dtype | None = None) -> Runner:
    """A PyTorch model as a runner (``dtype``: cast floating inputs, for a half-precision model)."""
    model.eval()

    def run(x: Any) -> np.ndarray:
        if dtype is not None and torch.is_tensor(x) and x.is_floating_point():
            x = x.to(dtype)
        with torch.inference_mode():
            return model(x).logits.float().numpy()
    return run


def per_item_ms(run: Runner, batches: list[Any], warmup: int = 2) -> float:
    """Median wall time per item over ``batches`` (each timed alone) after ``warmup`` calls: the
    median, so a burst of load from other processes does not decide the figure."""
    for x in batches[:warmup]:
        run(x)
    times = []
    for x in batches:
        t0 = time.perf_counter()
        n = len(run(x))
        times.append(1000 * (time.perf_counter() - t0) / n)
    return float(np.median(times))


def folder_size(folder: Path, skip: tuple[str, ...] = ()) -> int:
    """Bytes of every file under ``folder`` except the named ones (a reference copy)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name not in skip)


def accuracy(run: Runner, inputs: Inputs) -> tuple[float, float, float, int]:
    """(accuracy, 95% Wilson interval low, high, n) over every batch."""
    preds = np.concatenate([run(x).argmax(1) for x in inputs.batches])
    acc = float(np.mean(preds == inputs.targets))
    lo, hi = wilson_interval(acc, len(preds))
    return acc, lo, hi, len(preds)


def latencies(runs: dict[str, Runner], inputs: Inputs | dict[str, Inputs], rounds: int = 3,
              latency_batches: int = 4) -> dict[str, tuple[float, float]]:
    """{name: (ms/item at batch 1, ms/item at batch 32)}: the models take turns, ``rounds``
    times, and each keeps its best round's median, so load from other processes (a shared CPU)
    falls on all of them alike and inflates none of the figures much. ``inputs``: one set for
    all, or one per name."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            x = inputs[name] if isinstance(inputs, dict) else inputs
            b1, b32 = per_item_ms(run, x.singles), per_item_ms(run, x.batches[:latency_batches])
            old = best.get(name, (b1, b32))
            best[name] = (min(old[0], b1), min(old[1], b32))
    return best


def measure_all(models: dict[str, tuple[Runner, dict[str, Any]]], inputs: Inputs, rounds: int = 3) -> list[Measurement]:
    """One ``Measurement`` per model; ``models``: name -> (runner, {folder, size_bytes, parameters, notes})."""
    own = {k: info.get("inputs") or inputs for k, (_, info) in models.items()}  # a student reads its own
    times = latencies({k: run for k, (run, _) in models.items()}, own, rounds)
    out = []
    for name, (run, info) in models.items():
        acc, lo, hi, n = accuracy(run, own[name])
        b1, b32 = times[name]
        out.append(Measurement(name, acc, lo, hi, n, int(info["size_bytes"]), int(info["parameters"]), b1, b32,
                               1000 / b32, str(info["folder"]), info.get("notes", "")))
    return out
