"""``feature_extraction``: the backbone stays frozen; its features are computed once (disk
cache) and only the head trains, on the cached features. A second fit with another head or
other hyper-parameters never runs the backbone."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from headstart.heads._base import Head
from headstart.heads.linear import LinearHead
from headstart.heads.prototype import PrototypeHead
from headstart.model import TransferModel
from headstart.strategies._base import FitContext, Split, Strategy, class_weights
from headstart.strategies.feature_basis import FeatureBasis
from headstart.tasks.classification import ClassificationTask
from headstart.training.callbacks import EarlyStopping
from headstart.training.loop import steps_to_epochs, train_epochs
from headstart.training.optim import adamw

PROBE_CS = (0.1, 0.3, 1.0, 3.0, 10.0)


def fit_probe(feats: torch.Tensor, targets: np.ndarray, head: LinearHead, *, block_dims: list[int] | None = None,
              Cs: tuple[float, ...] = PROBE_CS, C: float | None = None, balanced: bool = False,
              seed: int = 0, standardize: bool = True) -> dict[str, Any]:
    """Fit a multinomial logistic regression on standardised features (C by stratified CV when
    every class has 2+ examples), then write it into ``head.fc`` with the standardisation folded
    in, so the head applies to raw features. Each block of ``block_dims`` columns is scaled to
    total variance 1, so multi-scale blocks of different widths weigh the same."""
    fb = FeatureBasis.fit(feats.double().numpy(), block_dims, standardize)
    zr = fb.transform(feats.double().numpy())  # (n, r)
    cw = "balanced" if balanced else None
    counts = np.bincount(targets)
    folds = int(min(5, counts[counts > 0].min()))
    scores = {}
    if C is None and folds >= 2 and len(Cs) > 1:
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for c in Cs:
            lr = LogisticRegression(C=c, max_iter=1000, class_weight=cw)
            scores[c] = float(cross_val_score(lr, zr, targets, cv=cv).mean())
        C = max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    C = float(C if C is not None else 0.1)
    lr = LogisticRegression(C=C, max_iter=2000, class_weight=cw).fit(zr, targets)
    coef = np.zeros((head.num_classes, fb.dim))
    bias = np.full(head.num_classes, -1e4)  # classes absent from training are never predicted
    present = lr.classes_
    if len(present) == 2:  # binary: sklearn keeps one row, for the positive class
        coef[present[1]], coef[present[0]] = lr.coef_[0] / 2, -lr.coef_[0] / 2
        bias[present[1]], bias[present[0]] = lr.intercept_[0] / 2, -lr.intercept_[0] / 2
    else:
        coef[present], bias[present] = lr.coef_, lr.intercept_
    w, b = fb.fold_weights(coef, bias)  # back to raw features: x -> standardise -> rotate
    with torch.no_grad():
        head.fc.weight.copy_(torch.from_numpy(w).float())
        head.fc.bias.copy_(torch.from_numpy(b).float())
    return {"C": C, "cv_accuracy": scores.get(C)}


def train_head(head: Head, feats: torch.Tensor, split: Split, val_feats: torch.Tensor | None,
               val: Split | None, ctx: FitContext, *, steps: int, lr: float, weight_decay: float,
               label_smoothing: float, batch_size: int = 64, patience: int = 10,
               block_dims: list[int] | None = None, desc: str = "head", standardize: bool = True
               ) -> list[dict[str, Any]]:
    """AdamW + warmup/cosine on cached features; early stopping when a validation split exists.

    Heads whose first operation is a linear layer train on standardised features rotated onto
    the training rows' span (``FeatureBasis``), a copy of the head of width ``r <= n``; the
    result is folded back into ``head``, which keeps applying to raw features."""
    fb = FeatureBasis.fit(feats.double().numpy(), block_dims, standardize) if head.input_layer() is not None else None
    work = head
    if fb is not None:
        work = type(head)(fb.dim, head.num_classes, **head.params)
        feats = torch.from_numpy(fb.transform(feats.double().numpy())).float()
        if val_feats is not None:
            val_feats = torch.from_numpy(fb.transform(val_feats.double().numpy())).float()
    targets = torch.as_tensor(split.targets)
    gen = torch.Generator().manual_seed(ctx.seed)
    loader = DataLoader(range(len(targets)), batch_size=batch_size, shuffle=True, generator=gen,
                        collate_fn=_RowGather(feats, targets))
    epochs = steps_to_epochs(len(targets), batch_size, steps, min_epochs=5, max_epochs=500)
    opt = adamw(work.parameters(), lr=lr, weight_decay=weight_decay)
    total = epochs * len(loader)
    sched = get_cosine_schedule_with_warmup(opt, int(0.05 * total), total)
    model, opt, loader, sched = ctx.accelerator.prepare(work, opt, loader, sched)
    weights = class_weights(split.targets, work.num_classes) if ctx.balance == "weights" else None
    task = ClassificationTask(label_smoothing, weights)
    stopper = EarlyStopping(patience=patience) if val is not None else None

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(val_feats.to(ctx.device)).float().cpu()
        model.train()
        return {"val_accuracy": float((logits.argmax(1).numpy() == val.targets).mean())}

    hist = train_epochs(ctx.accelerator, model, loader, opt, sched, task, epochs=epochs, grad_clip=None,
                        evaluate=evaluate if val is not None else None, stopper=stopper,
                        log=ctx.log, progress=False, desc=desc)
    if stopper is not None:
        stopper.restore(model)
    ctx.accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # drop the autocast wrapper (GPU)
    if fb is not None:
        _copy_folded(work, head, fb)
    return hist


class _RowGather:
    """collate_fn that gathers a batch of rows by one tensor index (not item by item)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __call__(self, idx: list[int]) -> list[torch.Tensor]:
        i = torch.as_tensor(idx)
        return [t[i] for t in self.tensors]


def _copy_folded(work: Head, head: Head, fb: FeatureBasis) -> None:
    """Copy every parameter of ``work`` into ``head``; the input layer goes through ``fb.fold``."""
    skip = {id(work.input_layer().weight), id(work.input_layer().bias)}
    target = dict(head.named_parameters())
    with torch.no_grad():
        for name, p in work.named_parameters():
            if id(p) not in skip:
                target[name].copy_(p.to(target[name]))
    fb.fold(work.input_layer(), head.input_layer())


class FeatureExtraction(Strategy):
    """Frozen backbone + head on cached features.

    ``solver='auto'``: a linear head is fitted as a logistic regression (lbfgs, C by
    cross-validation); other heads train with AdamW for ``steps`` steps.
    """

    name = "feature_extraction"
    frozen_backbone = True

    def __init__(self, solver: str = "auto", C: float | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-2, steps: int = 300, label_smoothing: float = 0.1,
                 batch_size: int = 128) -> None:
        self.solver = solver
        self.C = C
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = steps
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size

    def fit(self, model: TransferModel, train: Split, val: Split | None, ctx: FitContext) -> list[dict[str, Any]]:
        if self.solver not in ("auto", "lbfgs", "adamw"):
            raise ValueError(f"solver must be auto, lbfgs or adamw, got {self.solver!r}")
        model.backbone.requires_grad_(False)
        model.backbone.eval()
        feats = ctx.features(model, train)
        val_feats = ctx.features(model, val) if val is not None else None
        if isinstance(model.head, PrototypeHead):  # computed from class means, nothing to train
            info = model.head.fit_prototypes(feats, train.targets, model.backbone.feature_block_dims())
            ctx.log(f"prototypes: logit scale {info['scale']:g}, train accuracy {info['train_accuracy']:.3f}")
            return [{"epoch": 1, "prototype_scale": info["scale"]}]
        linear = isinstance(model.head, LinearHead)
        if self.solver == "lbfgs" and not linear:
            raise ValueError("solver='lbfgs' needs the linear head")
        if linear and self.solver in ("auto", "lbfgs"):
            info = fit_probe(feats, train.targets, model.head, block_dims=model.backbone.feature_block_dims(),
                             standardize=model.backbone.standardize_features, C=self.C,
                             balanced=ctx.balance is not None, seed=ctx.seed)
            ctx.log(f"linear probe: C={info['C']:g}" + (f", CV accuracy {info['cv_accuracy']:.3f}"
                                                      if info["cv_accuracy"] is not None else ""))
            return [{"epoch": 1, "probe_C": info["C"], "probe_cv_accuracy": info["cv_accuracy"]}]
        return train_head(model.head, feats, train, val_feats, val, ctx, steps=self.steps, lr=self.lr,
                          weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
                          batch_size=self.batch_size, block_dims=model.backbone.feature_block_dims(),
                          standardize=model.backbone.standardize_features)
