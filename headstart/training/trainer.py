"""The one trainer: model, task, data and strategy in; loader → optimizer → schedule → Accelerate
``prepare`` → loop → early stopping → checkpoints out. Every strategy and every task goes
through it, so the guarantees hold for all of them by construction: bitwise resume after a
kill (sampler order and augmentation are functions of seed, epoch and sample; model, optimizer,
scheduler, early-stopping and RNG states are checkpointed), OOM micro-batching, NaN guards,
DDP parity, SIGINT/SIGTERM checkpoints.

Frozen-backbone strategies train the head on cached features: first the task's closed-form
shortcut when it offers one for this head (a probe, ridge, prototypes), else the head itself on
standardised, span-reduced features (``FeatureBasis``) through the same loop.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from transformers import get_cosine_schedule_with_warmup

from headstart.data._base import LabeledData
from headstart.data.loaders import FeatureBatches, UnlabeledStream, feature_loader, make_loader
from headstart.data.sampler import EpochSampler
from headstart.heads.feature_basis import FeatureBasis
from headstart.model import HeadModel, TransferModel
from headstart.strategies import FeatureExtraction, RunSettings, Strategy
from headstart.tasks import ClassificationTask, Task
from headstart.tasks.classification import balanced_weights
from headstart.training.callbacks import EarlyStopping
from headstart.training.checkpoint import (
    load_latest,
    load_optimizer_state,
    save_checkpoint,
)
from headstart.training.context import FitContext, Split
from headstart.training.loop import (
    MAX_BAD_STEPS,
    Stepper,
    StopSignals,
    TrainingInterrupted,
    predict_logits,
)
from headstart.training.optim import adamw
from headstart.training.rng import restore_rng


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


def val_entry(task: Task, targets: Any, logits: torch.Tensor) -> dict[str, float]:
    """The task's scalar metrics on validation outputs, as ``val_<name>`` history entries."""
    return {f"val_{k}": v for k, v in task.metrics(targets, logits).items() if isinstance(v, float)}


@dataclass
class _Run:
    """One pass of the loop over prepared objects (what a checkpoint restores)."""

    model: torch.nn.Module
    core: torch.nn.Module  # the unwrapped module (attributes, freezing)
    task: Task
    loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    strategy: Strategy
    settings: RunSettings
    n_groups: int
    validate: Callable[[], dict[str, float]] | None
    unlabeled: UnlabeledStream | None = None


class Trainer:
    def __init__(self, ctx: FitContext) -> None:
        self.ctx = ctx

    # -- entry points ------------------------------------------------------------------
    def fit(self, model: TransferModel, task: Task, train: Split, val: Split | None,
            strategy: Strategy) -> list[dict[str, Any]]:
        """Train ``model`` for ``task`` as ``strategy`` says; returns the per-epoch history."""
        missing = [n for n in task.needs if n not in self.ctx.extras]
        if missing:
            raise ValueError(f"task {task.name} needs {', '.join(missing)} (pass it to fit, e.g. "
                             f"fit(..., {missing[0]}=...)); this run has none")
        strategy.validate(len(model.backbone.layer_groups()))
        train = Split(*task.training_rows(train.data, train.targets, self.ctx.extras))  # distillation: + teacher
        if task.on_cached_features and (not strategy.frozen_backbone or getattr(strategy, "solver", "auto") == "adamw"):
            raise ValueError(f"task {task.name} adapts on cached features in closed form: use the "
                             f"feature_extraction strategy with its default solver, not {strategy.name}")
        prepared = strategy.prepare(model)  # e.g. LoRA's adapters, before any checkpoint is read
        if prepared:
            self.ctx.log(prepared)
        head_task = task.head_after_body()
        if strategy.frozen_backbone:
            why = ("adapts the backbone's features to the unlabeled data"
                   if "unlabeled" in task.needs and not task.on_cached_features else
                   "tunes the backbone on pairs of the labels" if head_task is not None else "")
            if why:
                raise ValueError(f"task {task.name} {why}: it needs a strategy that trains the backbone "
                                 f"(fine_tuning, gradual_unfreezing, lora), not {strategy.name}")
            return self.fit_head(model, task, train, val, strategy)
        if head_task is not None:
            return self.fit_body_then_head(model, task, head_task, train, val, strategy)
        return self._fit_body(model, task, train, val, strategy)

    def _fit_body(self, model: TransferModel, task: Task, train: Split, val: Split | None,
                  strategy: Strategy) -> list[dict[str, Any]]:
        """The backbone trains (with the head, unless the task fits the head afterwards)."""
        ctx = self.ctx
        resume = load_latest(ctx.checkpoint_dir) if (ctx.resume and ctx.checkpoint_dir) else None
        if resume is not None and resume["extra"].get("strategy") != strategy.name:
            raise ValueError(f"{resume['path']}: checkpoint of strategy {resume['extra'].get('strategy')!r}, "
                             f"not {strategy.name!r}; resume with the same settings or start afresh")
        if resume is None and not ctx.warm_start and strategy.init_head == "probe" and task.head_after_body() is None:
            self.fit_head(model, task, train, val, FeatureExtraction(), purpose="initialise the head")
        settings = strategy.settings(len(train), ctx.batch_size)
        bb = model.backbone
        loader = make_loader(train.data, train.targets, bb.pretrained_cfg, bb.tokenizer(), train=True,
                             augment=settings.augment, batch_size=settings.batch_size, num_workers=ctx.num_workers,
                             seed=ctx.seed, weights=self._sample_weights(task, train))
        val_loader = (make_loader(val.data, val.targets, bb.pretrained_cfg, bb.tokenizer(), train=False,
                                  batch_size=max(64, ctx.batch_size), num_workers=ctx.num_workers, by_length=True)
                      if val is not None else None)
        hist = self.run(model, task, loader, strategy, settings, len(bb.layer_groups()),
                        lambda core: predict_logits(core, val_loader, ctx.device) if val is not None else None,
                        val, resume)
        if val is not None:
            task.after_fit(val.targets, predict_logits(model, val_loader, ctx.device))
        return hist

    def fit_body_then_head(self, model: TransferModel, task: Task, head_task: Task, train: Split,
                           val: Split | None, strategy: Strategy) -> list[dict[str, Any]]:
        """The task's loss tunes the body (no validation: the head is not trained yet), then
        ``head_task`` fits the head on the tuned body's features. A task ``blend`` below 1 mixes
        the pretrained weights back in first (WiSE-FT)."""
        blend = float(getattr(task, "blend", 1.0))
        start = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()} if blend < 1 else None
        hist = self._fit_body(model, task, train, None, strategy)
        if start is not None:
            blend_weights(model.backbone, start, blend)
        hist += self.fit_head(model, head_task, train, val, FeatureExtraction(), purpose="on the tuned body")
        return hist

    def fit_head(self, model: TransferModel, task: Task, train: Split, val: Split | None,
                 strategy: Strategy, purpose: str = "") -> list[dict[str, Any]]:
        """The head on cached features: the task's shortcut, or training on reduced features."""
        ctx, bb, head = self.ctx, model.backbone, model.head
        bb.requires_grad_(False)
        bb.eval()
        feats = ctx.features(bb, train.data)
        val_feats = ctx.features(bb, val.data) if val is not None else None
        solver = getattr(strategy, "solver", "auto")
        # a task that adapts on cached features also gets the unlabeled inputs' features
        extra = {"unlabeled": ctx.features(bb, ctx.extras["unlabeled"])} if task.on_cached_features else {}
        prompts = task.label_prompts(train.data.modality) if purpose != "initialise the head" else None
        if prompts:  # the class names' embeddings: the probe's prior (text classification)
            extra["label_features"] = ctx.features(bb, LabeledData(prompts, None, "text"))
        if solver != "adamw":
            with one_blas_thread(feats.numel()):
                info = task.shortcut(head, feats, train.targets, block_dims=bb.feature_block_dims(),
                                     standardize=bb.standardize_features, balanced=ctx.balance is not None,
                                     seed=ctx.seed, C=getattr(strategy, "C", None), **extra)
            if info is not None:
                ctx.log(info.pop("what") + (f" ({purpose})" if purpose else ""))
                self._after_fit_features(head, task, val, val_feats)
                return [{"epoch": 1, **info}]
            if solver == "lbfgs":
                raise ValueError(f"solver='lbfgs': task {task.name} has no closed form for the "
                                 f"{getattr(head, 'name', type(head).__name__)} head; use solver='auto'")
        hist = self._train_head(head, task, feats, train, val_feats, val, strategy, bb.feature_block_dims(),
                                bb.standardize_features)
        if purpose:
            ctx.log(f"head pre-trained on cached features ({purpose})")
        self._after_fit_features(head, task, val, val_feats)
        return hist

    # -- cached-feature head training --------------------------------------------------
    def _train_head(self, head: Any, task: Task, feats: torch.Tensor, train: Split, val_feats: torch.Tensor | None,
                    val: Split | None, strategy: Strategy, block_dims: list[int] | None,
                    standardize: bool) -> list[dict[str, Any]]:
        """Heads whose first operation is a linear layer train on standardised features rotated
        onto the training rows' span (a copy of the head of width ``r <= n``); the result is
        folded back into ``head``, which keeps applying to raw features."""
        with one_blas_thread(feats.numel()):
            fb = FeatureBasis.fit(feats.double().numpy(), block_dims, standardize) if head.input_layer() is not None else None
        work = head
        if fb is not None:
            work = type(head)(fb.dim, head.num_classes, **head.params)
            with one_blas_thread(feats.numel()):
                feats = torch.from_numpy(fb.transform(feats.double().numpy())).float()
                if val_feats is not None:
                    val_feats = torch.from_numpy(fb.transform(val_feats.double().numpy())).float()
        settings = strategy.settings(len(train), self.ctx.batch_size)
        dev = self.ctx.device
        kw = dict(batch_size=settings.batch_size, seed=self.ctx.seed, weights=self._sample_weights(task, train))
        loader = (FeatureBatches(feats.to(dev), train.targets, **kw) if _one_process(self.ctx.accelerator)
                  else feature_loader(feats, train.targets, **kw))
        with few_threads(dev, settings.batch_size * sum(p.numel() for p in work.parameters())):
            hist = self.run(HeadModel(work), task, loader, strategy, settings, 0,
                            lambda core: core(val_feats.to(dev)).logits.float().cpu() if val_feats is not None else None,
                            val, None)
        if fb is not None:
            _copy_folded(work, head, fb)
        return hist

    def _after_fit_features(self, head: Any, task: Task, val: Split | None, val_feats: torch.Tensor | None) -> None:
        if val is not None:
            with torch.inference_mode():
                task.after_fit(val.targets, head(val_feats.to(self.ctx.device)).float().cpu())

    def _sample_weights(self, task: Task, train: Split) -> Any:
        if self.ctx.balance != "sampler" or not isinstance(task, ClassificationTask):
            return None
        return balanced_weights(train.targets, task.num_outputs).numpy()[train.targets]

    # -- the loop ----------------------------------------------------------------------
    def run(self, model: torch.nn.Module, task: Task, loader: Any, strategy: Strategy, settings: RunSettings,
            n_groups: int, val_logits: Callable[[torch.nn.Module], torch.Tensor | None], val: Split | None,
            resume: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Optimizer, schedule and ``prepare``, then ``settings.epochs`` epochs (continuing ``resume``)."""
        acc = self.ctx.accelerator
        for part in (model.head, model.task_modules):  # a warm-started or pre-trained head trains on
            part.requires_grad_(True)
        if task.head_after_body() is not None:  # the loss reads the features only: the head comes later
            model.head.requires_grad_(False)
        self._apply_freeze(model, strategy, 0, n_groups, None)
        groups = strategy.param_groups(model)
        own = [p for p in model.task_modules.parameters()]
        if own:
            groups.append({"params": own, "lr": max(g["lr"] for g in groups), "weight_decay": 0.0, "group": -1})
        opt = adamw(groups)
        # The schedule in optimizer steps of the global batch (bs x processes). Accelerate steps a
        # prepared scheduler once per process per optimizer step, hence the factor P: the same
        # learning rates as one process with the whole batch.
        procs = acc.num_processes
        total = settings.epochs * math.ceil(len(loader.dataset) / (settings.batch_size * procs))
        total = min(total, settings.max_steps or total)
        sched = get_cosine_schedule_with_warmup(opt, int(settings.warmup * total) * procs, total * procs)
        if procs > 1 and strategy.trainable_groups(0, n_groups) != strategy.trainable_groups(10**6, n_groups):
            raise NotImplementedError(f"{strategy.name}: unfreezing groups during training is not supported with "
                                      "several processes yet (DDP registers trainable parameters once); "
                                      "use fine_tuning with a fixed freeze")
        core = model
        if isinstance(loader, FeatureBatches):  # one process, rows in memory: Accelerate has only the model
            model = acc.prepare(model)           # to place (and autocast); its optimizer wrapper costs per step
        else:
            model, opt, loader, sched = acc.prepare(model, opt, loader, sched)

        def validate() -> dict[str, float]:
            return val_entry(task, val.targets, val_logits(core))

        unlabeled = None
        if "unlabeled" in task.needs:
            bb = core.backbone
            unlabeled = UnlabeledStream(self.ctx.extras["unlabeled"], bb.pretrained_cfg, bb.tokenizer(),
                                        batch_size=settings.batch_size, seed=self.ctx.seed, augment=settings.augment)
        run = _Run(model, core, task, loader, opt, sched, strategy, settings, n_groups,
                   validate if val is not None else None, unlabeled)
        return _Loop(self.ctx, run, total).train(resume)

    @staticmethod
    def _apply_freeze(model: torch.nn.Module, strategy: Strategy, epoch: int, n_groups: int,
                      active: set[int] | None) -> set[int]:
        """Set ``requires_grad`` of the backbone's groups, only when the trainable set changed."""
        want = strategy.trainable_groups(epoch, n_groups)
        if n_groups and want != active:
            strategy.set_trainable(model.backbone, want)
        return want


class _Loop:
    """Epochs over a prepared run: resume, steps, NaN guard, validation, early stopping, checkpoints."""

    def __init__(self, ctx: FitContext, run: _Run, total_steps: int) -> None:
        self.ctx, self.r = ctx, run
        self.acc = ctx.accelerator
        self.sampler = _epoch_sampler(run.loader)
        self.per_step = _samples_per_step(run.loader)
        self.steps_per_epoch = (math.ceil(self.sampler.n / self.per_step) if self.sampler is not None
                                else len(run.loader))
        self.total_steps = max(1, total_steps)
        self.max_steps = run.settings.max_steps
        self.stopper = EarlyStopping("val_score", patience=run.settings.patience) if run.validate else None
        self.history: list[dict[str, Any]] = []
        self.stopped = False
        self.active: set[int] | None = None
        self.ckpt_dir = ctx.checkpoint_dir if run.settings.checkpoint else None

    def _restore(self, resume: dict[str, Any]) -> tuple[int, int, tuple[float, int]]:
        r = self.r
        self.acc.unwrap_model(r.model).load_state_dict(resume["model"])
        load_optimizer_state(r.optimizer, resume["optimizer"])  # moments laid out like their weights
        r.scheduler.load_state_dict(resume["scheduler"])
        state = resume["extra"].get("loop", {})
        self.history = list(state.get("history", []))
        self.stopped = bool(state.get("stopped", False))
        if self.stopper is not None and "stopper" in state:
            self.stopper.load_state(state["stopper"], resume["tensors"].get("best"))
        start_epoch, start_step = int(resume["epoch"]), int(resume["step"])
        if start_step and self.sampler is None:
            raise ValueError("cannot resume mid-epoch: the loader has no EpochSampler")
        restore_rng(*resume["rng"])
        self.ctx.log(f"resumed from epoch {start_epoch}" + (f", step {start_step}" if start_step else ""))
        return start_epoch, start_step, tuple(state.get("totals", (0.0, 0)))

    def checkpoint(self, epoch: int, step: int, totals: tuple[float, int]) -> Any:
        if self.ckpt_dir is None:
            return None
        loop_state: dict[str, Any] = {"history": self.history, "totals": list(totals), "stopped": self.stopped}
        tensors = {}
        if self.stopper is not None:
            loop_state["stopper"], best = self.stopper.state()
            if best is not None:
                tensors["best"] = best
        path = None
        if self.acc.is_main_process:
            path = save_checkpoint(self.ckpt_dir, epoch=epoch, step=step, model=self.acc.unwrap_model(self.r.model),
                                   optimizer=self.r.optimizer, scheduler=self.r.scheduler, tensors=tensors,
                                   extra={"strategy": self.r.strategy.name, "loop": loop_state})
        self.acc.wait_for_everyone()
        return path

    def train(self, resume: dict[str, Any] | None) -> list[dict[str, Any]]:
        start_epoch, start_step, totals = self._restore(resume) if resume is not None else (0, 0, (0.0, 0))
        stepper = Stepper(self.acc, self.r.model, self.r.task, self.r.optimizer, self.ctx.log)
        with StopSignals() as signals:
            for epoch in range(start_epoch, self.r.settings.epochs):
                if self.stopped or (self.max_steps and epoch * self.steps_per_epoch >= self.max_steps):
                    break
                skip = start_step if epoch == start_epoch else 0
                self._epoch(epoch, skip, totals if epoch == start_epoch else (0.0, 0), stepper, signals)
        if self.stopper is not None:
            self.stopper.restore(self.r.model)
        self.r.model.requires_grad_(False)
        self.r.model.eval()
        return self.history

    def _epoch(self, epoch: int, skip: int, totals: tuple[float, int], stepper: Stepper, signals: StopSignals) -> None:
        r, t0 = self.r, time.perf_counter()
        r.model.train()
        self.active = Trainer._apply_freeze(r.core, r.strategy, epoch, r.n_groups, self.active)
        r.strategy.set_modes(r.core)
        if self.sampler is not None:
            self.sampler.use_epoch(epoch, skip * self.per_step)
        total, count = totals
        step, bad = skip, 0
        global_step = epoch * self.steps_per_epoch + skip
        for batch in r.loader:
            if r.unlabeled is not None:
                batch = {**batch, "unlabeled": r.unlabeled.batch(epoch, step, self.acc.device)}
            loss = stepper(batch, global_step / self.total_steps)["loss"]
            step, global_step = step + 1, global_step + 1
            if not math.isfinite(loss):  # skip the step; too many in a row is an error
                bad += 1
                r.optimizer.zero_grad(set_to_none=True)
                if bad >= MAX_BAD_STEPS:
                    raise FloatingPointError(f"loss was NaN/inf for {bad} consecutive steps in epoch {epoch + 1}: "
                                             "lower the learning rate or check the inputs")
            else:
                bad = 0
                if r.settings.grad_clip:
                    self.acc.clip_grad_norm_(r.model.parameters(), r.settings.grad_clip)
                r.optimizer.step()
                r.scheduler.step()
                r.optimizer.zero_grad(set_to_none=True)
                total, count = total + loss, count + 1
            if self.ctx.on_step is not None:
                self.ctx.on_step({"epoch": epoch, "step": step, "global_step": global_step, "loss": loss})
            if signals.received is not None:
                raise TrainingInterrupted(self.checkpoint(epoch, step, (total, count)))
            if self.max_steps and global_step >= self.max_steps:  # the exact step budget is spent
                break
            every = self.ctx.checkpoint_every
            if every and global_step % every == 0 and step < self.steps_per_epoch:
                self.checkpoint(epoch, step, (total, count))
        self._end_epoch(epoch, total / max(count, 1), stepper, t0, signals)

    def _end_epoch(self, epoch: int, train_loss: float, stepper: Stepper, t0: float, signals: StopSignals) -> None:
        r = self.r
        entry: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "lr": r.optimizer.param_groups[-1]["lr"]}
        if stepper.parts > 1:
            entry["micro_batches"] = stepper.parts
        if r.validate is not None:
            entry.update(r.validate())
        entry["seconds"] = time.perf_counter() - t0
        if r.n_groups:
            entry["trainable_groups"] = sorted(self.active or ())
        if r.settings.log_epochs:
            self.ctx.log(f"epoch {epoch + 1}/{r.settings.epochs}: train loss {train_loss:.4f}"
                         + (f", val score {entry['val_score']:.4f}" if "val_score" in entry else "")
                         + f" ({entry['seconds']:.1f} s)")
        self.history.append(entry)
        if self.acc.trackers:  # TensorBoard / MLflow, when the run has a log directory
            self.acc.log({f"{r.settings.desc}/{k}": v for k, v in entry.items()
                          if k != "epoch" and isinstance(v, (int, float))}, step=epoch + 1)
        self.stopped = bool(self.stopper is not None and self.stopper(epoch, entry, r.model))
        saved = self.checkpoint(epoch + 1, 0, (0.0, 0))
        if signals.received is not None:
            raise TrainingInterrupted(saved)


# A training step of at most this many multiply-adds (batch x parameters: a head on cached
# features) runs on one CPU thread. Its tensors are too small to split; with the cores shared,
# every parallel op also waits for a descheduled thread (MLP head on 500 Fashion-MNIST features,
# 300 steps, load 3 on 2 cores: 19.0 s on 2 threads, 2.3 s on 1).
SMALL_STEP = 2**26


# A closed-form head fit (logistic regression with C by CV, the class-name prior, ridge: scikit-learn
# and numpy on cached features) of at most this many feature values runs its BLAS on one thread.
# Its many small BLAS calls make the BLAS threads spin-wait for each other and for torch's idle
# OpenMP threads: probe + class-name prior on 51 x 384 features (Rotten Tomatoes N=64, MiniLM, one
# cross-validation fold) took 1.25 s on two threads and 0.17 s on one, alone on 2 cores (chrt),
# with the same weights. See also ONE_THREAD in headstart.adaptation.shift.
SMALL_FIT = 2**22


@contextmanager
def one_blas_thread(values: int) -> Iterator[None]:
    """BLAS and OpenMP on one thread while a fit on ``values`` (<= ``SMALL_FIT``) feature values runs."""
    if values > SMALL_FIT:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _one_process(acc: Accelerator) -> bool:
    """One process and no loss scaler: Accelerate's loader and optimizer wrappers change nothing."""
    return acc.distributed_type == DistributedType.NO and acc.scaler is None


@contextmanager
def few_threads(device: torch.device, step_macs: int) -> Iterator[None]:
    """One intra-op thread while a small step (``step_macs`` <= ``SMALL_STEP``) trains on CPU;
    the previous count after."""
    before = torch.get_num_threads()
    if device.type != "cpu" or step_macs > SMALL_STEP or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _copy_folded(work: Any, head: Any, fb: FeatureBasis) -> None:
    """Copy every parameter of ``work`` into ``head``; the input layer goes through ``fb.fold``."""
    skip = {id(work.input_layer().weight), id(work.input_layer().bias)}
    target = dict(head.named_parameters())
    with torch.no_grad():
        for name, p in work.named_parameters():
            if id(p) not in skip:
                target[name].copy_(p.to(target[name]))
    fb.fold(work.input_layer(), head.input_layer())


@torch.no_grad()
def blend_weights(module: torch.nn.Module, start: dict[str, torch.Tensor], blend: float) -> None:
    """``blend * current + (1 - blend) * start`` for every floating-point tensor of ``module``
    (weight-space ensembling of a tuned model with its starting point: WiSE-FT, Wortsman et al. 2022)."""
    for name, t in module.state_dict().items():
        if t.is_floating_point():
            t.lerp_(start[name].to(t), 1.0 - blend)
