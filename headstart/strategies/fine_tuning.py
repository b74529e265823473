"""``fine_tuning``: train the backbone with the head, in layer groups.

Defaults follow what works at small N (see ANCHORS.md: a naive full fine-tune loses to a
linear probe at N=100): the head starts from a linear probe on cached features (LP-FT, Kumar
et al. 2022, "Fine-Tuning can Distort Pretrained Features"), layer-wise learning-rate decay
(Howard & Ruder 2018; Clark et al. 2020), warmup + cosine, label smoothing, BatchNorm
statistics frozen, a step budget rather than an epoch count, and early stopping when a
validation split exists.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from transformers import get_cosine_schedule_with_warmup

from headstart.data.loaders import make_loader
from headstart.heads.linear import LinearHead
from headstart.model import TransferModel
from headstart.strategies._base import FitContext, Split, Strategy, class_weights
from headstart.strategies.feature_extraction import fit_probe, train_head
from headstart.tasks.classification import ClassificationTask
from headstart.training.callbacks import EarlyStopping
from headstart.training.checkpoint import load_latest
from headstart.training.loop import predict_logits, steps_to_epochs, train_epochs
from headstart.training.optim import adamw


def parse_freeze(spec: str, n_groups: int) -> set[int]:
    """``none`` | ``all`` | ``first:N`` | ``all-but-last:K`` -> indices of frozen groups."""
    s = spec.strip().lower()
    if s == "none":
        return set()
    if s == "all":
        return set(range(n_groups))
    kind, _, num = s.partition(":")
    if not num.isdigit() or kind not in ("first", "all-but-last"):
        raise ValueError(f"freeze must be none, all, first:N or all-but-last:K; got {spec!r}")
    k = int(num)
    if k > n_groups:
        raise ValueError(f"freeze {spec!r}: the backbone has only {n_groups} layer groups")
    return set(range(k)) if kind == "first" else set(range(n_groups - k))


def set_batchnorm_eval(module: nn.Module, trainable_ids: set[int] | None = None) -> None:
    """Put BatchNorm layers in eval mode: all of them (trainable_ids None) or those whose
    parameters are all frozen, so frozen parts keep their pretrained statistics."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            if trainable_ids is None or not any(id(p) in trainable_ids for p in m.parameters()):
                m.eval()


class FineTuning(Strategy):
    name = "fine_tuning"

    def __init__(self, freeze: str = "none", lr: float = 3e-4, head_lr: float | None = None,
                 layer_decay: float = 0.7, weight_decay: float = 0.01, steps: int = 400,
                 epochs: int | None = None, max_epochs: int = 60, batch_size: int | None = None,
                 warmup: float = 0.1, label_smoothing: float = 0.1, augment: bool = True,
                 init_head: str = "probe", batchnorm: str = "frozen", grad_clip: float = 1.0,
                 patience: int = 5) -> None:
        self.freeze = freeze
        self.lr = lr
        self.head_lr = head_lr
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay
        self.steps = steps
        self.epochs = epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.warmup = warmup
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.init_head = init_head
        self.batchnorm = batchnorm
        self.grad_clip = grad_clip
        self.patience = patience

    # -- what trains -------------------------------------------------------------------
    def trainable_groups(self, epoch: int, n_groups: int) -> set[int]:
        """Backbone groups that train during ``epoch`` (gradual unfreezing overrides this)."""
        return set(range(n_groups)) - parse_freeze(self.freeze, n_groups)

    def param_groups(self, model: TransferModel) -> list[dict[str, Any]]:
        """One optimizer group per backbone layer group (lr decayed towards the input) + the head;
        no weight decay on biases and norm weights."""
        groups = model.backbone.layer_groups()
        n = len(groups)
        out = []
        for i, params in enumerate(groups):
            lr = self.lr * self.layer_decay ** (n - 1 - i)
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            out += [{"params": decay, "lr": lr, "weight_decay": self.weight_decay, "group": i},
                    {"params": no_decay, "lr": lr, "weight_decay": 0.0, "group": i}]
        head_lr = self.head_lr if self.head_lr is not None else self.lr
        out.append({"params": list(model.head.parameters()), "lr": head_lr,
                    "weight_decay": self.weight_decay, "group": n})
        return [g for g in out if g["params"]]

    def _apply_freeze(self, model: TransferModel, epoch: int) -> set[int]:
        groups = model.backbone.layer_groups()
        active = self.trainable_groups(epoch, len(groups))
        for i, params in enumerate(groups):
            for p in params:
                p.requires_grad_(i in active)
        return active

    def _set_modes(self, model: TransferModel) -> None:
        groups = model.backbone.layer_groups()
        trainable = {id(p) for g in groups for p in g if p.requires_grad}
        set_batchnorm_eval(model.backbone, None if self.batchnorm == "frozen" else trainable)

    # -- fit ---------------------------------------------------------------------------
    def _init_head(self, model: TransferModel, train: Split, val: Split | None, ctx: FitContext) -> None:
        if self.init_head == "random":
            return
        if self.init_head != "probe":
            raise ValueError(f"init_head must be 'probe' or 'random', got {self.init_head!r}")
        model.backbone.eval()
        feats = ctx.features(model, train)
        if isinstance(model.head, LinearHead):
            info = fit_probe(feats, train.targets, model.head, block_dims=model.backbone.feature_block_dims(),
                             standardize=model.backbone.standardize_features,
                             balanced=ctx.balance is not None, seed=ctx.seed)
            ctx.log(f"head initialised by a linear probe on cached features (C={info['C']:g})")
        else:
            val_feats = ctx.features(model, val) if val is not None else None
            train_head(model.head, feats, train, val_feats, val, ctx, steps=300, lr=1e-3, weight_decay=1e-2,
                       label_smoothing=self.label_smoothing, batch_size=128,
                       block_dims=model.backbone.feature_block_dims(),
                       standardize=model.backbone.standardize_features)
            ctx.log("head pre-trained on cached features")

    def fit(self, model: TransferModel, train: Split, val: Split | None, ctx: FitContext) -> list[dict[str, Any]]:
        if self.batchnorm not in ("frozen", "train"):
            raise ValueError(f"batchnorm must be 'frozen' or 'train', got {self.batchnorm!r}")
        parse_freeze(self.freeze, len(model.backbone.layer_groups()))  # fail before any compute
        acc = ctx.accelerator
        resume = load_latest(ctx.checkpoint_dir) if (ctx.resume and ctx.checkpoint_dir) else None
        if resume is not None and resume["extra"].get("strategy") != self.name:
            raise ValueError(f"{resume['path']}: checkpoint of strategy {resume['extra'].get('strategy')!r}, "
                             f"not {self.name!r}; resume with the same settings or start afresh")
        if resume is None and not ctx.warm_start:
            self._init_head(model, train, val, ctx)
        weights = None
        if ctx.balance == "sampler":
            weights = class_weights(train.targets, model.head.num_classes).numpy()[train.targets]
        bs = self.batch_size or ctx.batch_size
        loader = make_loader(train.data, train.targets, model.backbone, train=True, augment=self.augment,
                             batch_size=bs, num_workers=ctx.num_workers, seed=ctx.seed, weights=weights)
        epochs = self.epochs or steps_to_epochs(len(train), bs, self.steps, min_epochs=2, max_epochs=self.max_epochs)
        self._apply_freeze(model, 0)
        opt = adamw(self.param_groups(model))
        # The schedule in optimizer steps of the global batch (bs x processes). Accelerate steps a
        # prepared scheduler once per process per optimizer step, hence the factor P: the same
        # learning rates as one process with the whole batch.
        procs = acc.num_processes
        total = epochs * math.ceil(len(train) / (bs * procs))
        sched = get_cosine_schedule_with_warmup(opt, int(self.warmup * total) * procs, total * procs)
        if acc.num_processes > 1 and len(self.trainable_groups(0, len(model.backbone.layer_groups()))) != len(
                self.trainable_groups(10**6, len(model.backbone.layer_groups()))):
            raise NotImplementedError(f"{self.name}: unfreezing groups during training is not supported with "
                                      "several processes yet (DDP registers trainable parameters once); "
                                      "use fine_tuning with a fixed freeze")
        core = model  # the TransferModel; ``model`` may become a DDP wrapper without its attributes
        model, opt, loader, sched = acc.prepare(model, opt, loader, sched)
        loss_weights = class_weights(train.targets, core.head.num_classes) if ctx.balance == "weights" else None
        task = ClassificationTask(self.label_smoothing, loss_weights)
        val_loader = (make_loader(val.data, val.targets, core.backbone, train=False,
                                  batch_size=max(64, ctx.batch_size), num_workers=ctx.num_workers)
                      if val is not None else None)
        stopper = EarlyStopping(patience=self.patience) if val is not None else None

        def on_epoch_start(epoch: int) -> None:
            self._apply_freeze(core, epoch)
            self._set_modes(core)

        def evaluate() -> dict[str, float]:
            logits = predict_logits(core, val_loader, ctx.device)
            return {"val_accuracy": float((logits.argmax(1).numpy() == val.targets).mean()),
                    "val_loss": float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(val.targets)))}

        def on_epoch_end(epoch: int, log: dict[str, Any]) -> None:
            log["trainable_groups"] = sorted(self.trainable_groups(epoch, len(core.backbone.layer_groups())))
            ctx.log(f"epoch {epoch + 1}/{epochs}: train loss {log['train_loss']:.4f}"
                    + (f", val accuracy {log['val_accuracy']:.4f}" if "val_accuracy" in log else "")
                    + f" ({log['seconds']:.1f} s)")

        hist = train_epochs(acc, model, loader, opt, sched, task, epochs=epochs, grad_clip=self.grad_clip,
                            on_epoch_start=on_epoch_start, evaluate=evaluate if val_loader is not None else None,
                            on_epoch_end=on_epoch_end, stopper=stopper, checkpoint_dir=ctx.checkpoint_dir,
                            checkpoint_every=ctx.checkpoint_every, extra={"strategy": self.name},
                            resume=resume, on_step=ctx.on_step, log=ctx.log, progress=ctx.verbose,
                            desc="fine-tune")
        if stopper is not None:
            stopper.restore(model)
        model.requires_grad_(False)
        model.eval()
        return hist
