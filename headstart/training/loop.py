"""The training loop: short enough to read in one sitting. Devices, mixed precision and
distributed launch are Accelerate's; what trains and how is the strategy's; the loss is the
task's."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

MAX_BAD_STEPS = 5


def train_epochs(accelerator: Accelerator, model: torch.nn.Module, loader: Any,
                 optimizer: torch.optim.Optimizer, scheduler: Any, task: Callable[..., dict], *,
                 epochs: int, start_epoch: int = 0, grad_clip: float | None = 1.0,
                 on_epoch_start: Callable[[int], None] | None = None,
                 evaluate: Callable[[], dict[str, float]] | None = None,
                 on_epoch_end: Callable[[int, dict[str, Any]], bool] | None = None,
                 progress: bool = True, desc: str = "train") -> list[dict[str, Any]]:
    """Run epochs ``start_epoch..epochs-1``; ``on_epoch_end`` returning True stops early."""
    history = []
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        total, count, bad = 0.0, 0, 0
        bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                   disable=not (progress and accelerator.is_local_main_process))
        for batch in bar:
            loss = task(model, batch)["loss"]
            if not torch.isfinite(loss):  # skip the step; too many in a row is an error
                bad += 1
                optimizer.zero_grad(set_to_none=True)
                if bad >= MAX_BAD_STEPS:
                    raise FloatingPointError(
                        f"loss was NaN/inf for {bad} consecutive steps in epoch {epoch + 1}: "
                        "lower the learning rate or check the inputs")
                continue
            bad = 0
            accelerator.backward(loss)
            if grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        log: dict[str, Any] = {"epoch": epoch + 1, "train_loss": total / max(count, 1),
                               "lr": optimizer.param_groups[-1]["lr"]}
        if evaluate is not None:
            log.update(evaluate())
        log["seconds"] = time.perf_counter() - t0
        history.append(log)
        if on_epoch_end is not None and on_epoch_end(epoch, log):
            break
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
