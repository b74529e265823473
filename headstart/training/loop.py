"""The training loop: short enough to read in one sitting. Devices, mixed precision and
distributed launch are Accelerate's; what trains and how is the strategy's; the loss is the
task's. The loop owns what makes a run survivable: checkpoints (each epoch, every N steps, on
SIGINT/SIGTERM), exact resume, NaN/inf steps skipped, and out-of-memory retries with smaller
micro-batches that keep the effective batch."""
from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator

from headstart.data.loaders import in_input_order

MAX_BAD_STEPS = 5


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during training; ``checkpoint`` is where the run can resume from."""

    def __init__(self, checkpoint: Path | None) -> None:
        where = (f"a checkpoint was saved to {checkpoint}; run the same command with --resume "
                 "(Python: resume=True) to continue") if checkpoint else "no checkpoint directory was set"
        super().__init__(f"training interrupted: {where}")
        self.checkpoint = checkpoint


class StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _rows(value: Any, a: int, b: int) -> Any:
    if isinstance(value, dict):
        return {k: _rows(v, a, b) for k, v in value.items()}
    return value[a:b] if torch.is_tensor(value) else value


def batch_size_of(batch: dict[str, Any]) -> int:
    return len(batch["targets"])


def split_batch(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """Split a dict batch into ``parts`` micro-batches along dim 0 (every tensor, nested dicts too)."""
    n = batch_size_of(batch)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [_rows(batch, a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


class Stepper:
    """Forward + backward of one batch, in ``parts`` micro-batches (gradient accumulation).
    On out-of-memory ``parts`` doubles and the batch is retried: same effective batch."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, task: Any,
                 optimizer: torch.optim.Optimizer, log: Callable[[str], None]) -> None:
        self.acc, self.model, self.task, self.opt, self.log = accelerator, model, task, optimizer, log
        self.parts = 1

    def __call__(self, batch: dict[str, Any], progress: float) -> dict[str, float]:
        n = batch_size_of(batch)
        while True:
            try:
                return self._run(batch, n, progress)
            except torch.OutOfMemoryError:
                self.opt.zero_grad(set_to_none=True)
                if self.parts >= n:
                    raise
                self.parts *= 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.log(f"out of memory: retrying in {self.parts} micro-batches of about "
                         f"{math.ceil(n / self.parts)} (effective batch unchanged)")

    def _run(self, batch: dict[str, Any], n: int, progress: float) -> dict[str, float]:
        chunks = split_batch(batch, self.parts) if self.parts > 1 else [batch]
        totals: dict[str, float] = {}
        for j, chunk in enumerate(chunks):
            terms = self.task.loss(self.task.forward(self.model, chunk), chunk, progress)
            share = batch_size_of(chunk) / n
            loss = terms["loss"] * share
            if not torch.isfinite(loss):
                return {"loss": float("nan")}
            if j < len(chunks) - 1:
                with self.acc.no_sync(self.model):
                    self.acc.backward(loss)
            else:
                self.acc.backward(loss)
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) * share
        return totals


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, loader: Any, device: torch.device) -> torch.Tensor:
    """Logits (N, C) in input order (a length-sorted loader's rows put back), eval mode, float32 on CPU."""
    return predict_outputs(model, loader, device)[0]


@torch.inference_mode()
def predict_outputs(model: torch.nn.Module, loader: Any, device: torch.device,
                    on_features: Callable[[torch.Tensor], Any] | None = None) -> tuple[torch.Tensor, Any]:
    """(logits (N, C), ``on_features`` of the pooled features batch by batch, concatenated; None
    without it), both in input order: the features an output-side check needs, from the same pass."""
    was = model.training
    model.eval()
    out, extra = [], []
    for batch in loader:
        inputs = batch["inputs"]
        inputs = {k: v.to(device) for k, v in inputs.items()} if isinstance(inputs, dict) else inputs.to(device)
        o = model(inputs)
        out.append(o.logits.float().cpu())
        if on_features is not None:
            extra.append(torch.as_tensor(on_features(o.features.float().cpu())))
    model.train(was)
    logits = in_input_order(torch.cat(out), loader)
    return logits, (in_input_order(torch.cat(extra), loader) if on_features is not None else None)
