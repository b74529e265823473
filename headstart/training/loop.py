"""The training loop: short enough to read in one sitting. Devices, mixed precision and
distributed launch are Accelerate's; what trains and how is the strategy's; the loss is the
task's. The loop owns what makes a run survivable: checkpoints (each epoch, every N steps, on
SIGINT/SIGTERM), exact resume, NaN/inf steps skipped, and out-of-memory retries with smaller
micro-batches that keep the effective batch."""
from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from headstart.training.callbacks import EarlyStopping
from headstart.training.checkpoint import save_checkpoint
from headstart.training.rng import restore_rng
from headstart.training.sampler import EpochSampler

MAX_BAD_STEPS = 5


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during training; ``checkpoint`` is where the run can resume from."""

    def __init__(self, checkpoint: Path | None) -> None:
        where = (f"a checkpoint was saved to {checkpoint}; run the same command with --resume "
                 "(Python: resume=True) to continue") if checkpoint else "no checkpoint directory was set"
        super().__init__(f"training interrupted: {where}")
        self.checkpoint = checkpoint


class _StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
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


def _epoch_sampler(loader: Any) -> EpochSampler | None:
    """The EpochSampler under a (possibly Accelerate-wrapped) loader, if any."""
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        for _ in range(3):
            if isinstance(obj, EpochSampler):
                return obj
            obj = getattr(obj, "sampler", None) or getattr(obj, "batch_sampler", None)
    return None


def _samples_per_step(loader: Any) -> int:
    """Samples drawn from the sampler per optimizer step (all processes together)."""
    total = getattr(loader, "total_batch_size", None)  # Accelerate-prepared loaders
    if total:
        return int(total)
    return int(loader.batch_size or loader.batch_sampler.batch_size)


def split_batch(batch: Any, parts: int) -> list[Any]:
    """Split an (inputs, targets) batch into ``parts`` micro-batches along dim 0."""
    inputs, targets = batch
    n = len(targets)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            x = {k: v[a:b] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[a:b]
            out.append((x, targets[a:b]))
    return out


class _Stepper:
    """Forward + backward of one batch, in ``parts`` micro-batches (gradient accumulation).
    On out-of-memory ``parts`` doubles and the batch is retried: same effective batch."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, task: Callable[..., dict],
                 optimizer: torch.optim.Optimizer, log: Callable[[str], None]) -> None:
        self.acc, self.model, self.task, self.opt, self.log = accelerator, model, task, optimizer, log
        self.parts = 1

    def __call__(self, batch: Any) -> float:
        n = len(batch[1])
        while True:
            try:
                return self._run(batch, n)
            except torch.OutOfMemoryError:
                self.opt.zero_grad(set_to_none=True)
                if self.parts >= n:
                    raise
                self.parts *= 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.log(f"out of memory: retrying in {self.parts} micro-batches of about "
                         f"{math.ceil(n / self.parts)} (effective batch unchanged)")

    def _run(self, batch: Any, n: int) -> float:
        chunks = split_batch(batch, self.parts) if self.parts > 1 else [batch]
        total = 0.0
        for j, chunk in enumerate(chunks):
            loss = self.task(self.model, chunk)["loss"] * (len(chunk[1]) / n)
            if not torch.isfinite(loss):
                return float("nan")
            if j < len(chunks) - 1:
                with self.acc.no_sync(self.model):
                    self.acc.backward(loss)
            else:
                self.acc.backward(loss)
            total += float(loss.detach())
        return total


def train_epochs(accelerator: Accelerator, model: torch.nn.Module, loader: Any,
                 optimizer: torch.optim.Optimizer, scheduler: Any, task: Callable[..., dict], *,
                 epochs: int, grad_clip: float | None = 1.0,
                 on_epoch_start: Callable[[int], None] | None = None,
                 evaluate: Callable[[], dict[str, float]] | None = None,
                 on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
                 stopper: EarlyStopping | None = None,
                 checkpoint_dir: str | Path | None = None, checkpoint_every: int | None = None,
                 extra: dict[str, Any] | None = None, resume: dict[str, Any] | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None,
                 log: Callable[[str], None] = print,
                 progress: bool = True, desc: str = "train") -> list[dict[str, Any]]:
    """Train ``epochs`` epochs (continuing from ``resume``, a ``load_latest`` result).

    Checkpoints go to ``checkpoint_dir`` after each epoch, every ``checkpoint_every`` steps and
    on SIGINT/SIGTERM (then ``TrainingInterrupted`` is raised). ``stopper`` stops early and its
    state is checkpointed. ``on_step`` gets ``{epoch, step, global_step, loss}`` after each step.
    """
    sampler = _epoch_sampler(loader)
    history: list[dict[str, Any]] = []
    start_epoch, start_step, totals, stopped = 0, 0, (0.0, 0), False
    if resume is not None:
        accelerator.unwrap_model(model).load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        state = resume["extra"].get("loop", {})
        history = list(state.get("history", []))
        totals = tuple(state.get("totals", (0.0, 0)))
        stopped = bool(state.get("stopped", False))
        if stopper is not None and "stopper" in state:
            stopper.load_state(state["stopper"], resume["tensors"].get("best"))
        start_epoch, start_step = int(resume["epoch"]), int(resume["step"])
        if start_step and sampler is None:
            raise ValueError("cannot resume mid-epoch: the loader has no EpochSampler")
        restore_rng(*resume["rng"])
        log(f"resumed from epoch {start_epoch}" + (f", step {start_step}" if start_step else ""))
    stepper = _Stepper(accelerator, model, task, optimizer, log)
    per_step = _samples_per_step(loader)
    steps_per_epoch = math.ceil(sampler.n / per_step) if sampler is not None else len(loader)
    global_step = start_epoch * steps_per_epoch + start_step

    def checkpoint(epoch: int, step: int, loss_totals: tuple[float, int]) -> Path | None:
        if checkpoint_dir is None:
            return None
        loop_state = {"history": history, "totals": list(loss_totals), "stopped": stopped}
        tensors = {}
        if stopper is not None:
            loop_state["stopper"], best = stopper.state()
            if best is not None:
                tensors["best"] = best
        path = None
        if accelerator.is_main_process:
            path = save_checkpoint(checkpoint_dir, epoch=epoch, step=step, model=accelerator.unwrap_model(model),
                                   optimizer=optimizer, scheduler=scheduler, tensors=tensors,
                                   extra={**(extra or {}), "loop": loop_state})
        accelerator.wait_for_everyone()
        return path

    with _StopSignals() as signals:
        for epoch in range(start_epoch, epochs):
            if stopped:
                break
            t0 = time.perf_counter()
            model.train()
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            skip = start_step if epoch == start_epoch else 0
            if sampler is not None:
                sampler.use_epoch(epoch, skip * per_step)
            total, count = totals if epoch == start_epoch else (0.0, 0)
            step, bad = skip, 0
            bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                       disable=not (progress and accelerator.is_local_main_process))
            for batch in bar:
                loss = stepper(batch)
                step += 1
                global_step += 1
                if not math.isfinite(loss):  # skip the step; too many in a row is an error
                    bad += 1
                    optimizer.zero_grad(set_to_none=True)
                    if bad >= MAX_BAD_STEPS:
                        raise FloatingPointError(
                            f"loss was NaN/inf for {bad} consecutive steps in epoch {epoch + 1}: "
                            "lower the learning rate or check the inputs")
                else:
                    bad = 0
                    if grad_clip:
                        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    total += loss
                    count += 1
                    bar.set_postfix(loss=f"{total / count:.4f}")
                if on_step is not None:
                    on_step({"epoch": epoch, "step": step, "global_step": global_step, "loss": loss})
                if signals.received is not None:
                    raise TrainingInterrupted(checkpoint(epoch, step, (total, count)))
                if checkpoint_every and global_step % checkpoint_every == 0 and step < steps_per_epoch:
                    checkpoint(epoch, step, (total, count))
            entry: dict[str, Any] = {"epoch": epoch + 1, "train_loss": total / max(count, 1),
                                     "lr": optimizer.param_groups[-1]["lr"]}
            if stepper.parts > 1:
                entry["micro_batches"] = stepper.parts
            if evaluate is not None:
                entry.update(evaluate())
            entry["seconds"] = time.perf_counter() - t0
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)
            history.append(entry)
            if accelerator.trackers:  # TensorBoard / MLflow, when the run has a log directory
                accelerator.log({f"{desc}/{k}": v for k, v in entry.items()
                                 if k != "epoch" and isinstance(v, (int, float))}, step=epoch + 1)
            stopped = bool(stopper is not None and stopper(epoch, entry, model))
            saved = checkpoint(epoch + 1, 0, (0.0, 0))
            if signals.received is not None:
                raise TrainingInterrupted(saved)
    return history


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, loader: Any, device: torch.device) -> torch.Tensor:
    """Logits (N, C) in loader order, eval mode, float32 on CPU."""
    was = model.training
    model.eval()
    out = []
    for inputs, _ in loader:
        inputs = {k: v.to(device) for k, v in inputs.items()} if isinstance(inputs, dict) else inputs.to(device)
        out.append(model(inputs).float().cpu())
    model.train(was)
    return torch.cat(out)


def steps_to_epochs(n_train: int, batch_size: int, steps: int, min_epochs: int = 1,
                    max_epochs: int = 200) -> int:
    """Epochs needed for about ``steps`` optimizer steps at this dataset size."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    return int(min(max_epochs, max(min_epochs, math.ceil(steps / per_epoch))))
