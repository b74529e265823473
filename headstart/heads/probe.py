"""Closed-form fits of a linear head on cached features: the shortcuts tasks offer.

Each fits on standardised (and span-reduced, see ``FeatureBasis``) features, then writes the
result into the head's final linear layer with the standardisation folded in, so the head
applies to raw features:
- ``fit_probe``: multinomial logistic regression, C by stratified CV (classification);
- ``fit_ridge``: ridge regression, alpha by leave-one-out / CV (regression, standardised targets);
- ``fit_one_vs_rest``: one logistic regression per label (multi-label).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.heads.feature_basis import FeatureBasis

PROBE_CS = (0.1, 0.3, 1.0, 3.0, 10.0)
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))


def _write(layer: nn.Linear, fb: FeatureBasis, coef: np.ndarray, bias: np.ndarray) -> None:
    w, b = fb.fold_weights(coef, bias)  # back to raw features: x -> standardise -> rotate
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w).float())
        layer.bias.copy_(torch.from_numpy(b).float())


def fit_probe(feats: torch.Tensor, targets: np.ndarray, head: nn.Module, *, block_dims: list[int] | None = None,
              Cs: tuple[float, ...] = PROBE_CS, C: float | None = None, balanced: bool = False,
              seed: int = 0, standardize: bool = True) -> dict[str, Any]:
    """Multinomial logistic regression on standardised features (C by stratified CV when every
    class has 2+ examples), written into ``head.fc``. Each block of ``block_dims`` columns is
    scaled to total variance 1, so multi-scale blocks of different widths weigh the same."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

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
    _write(head.fc, fb, coef, bias)
    return {"C": C, "cv_accuracy": scores.get(C)}


def fit_ridge(feats: torch.Tensor, targets: np.ndarray, head: nn.Module, *, block_dims: list[int] | None = None,
              alphas: tuple[float, ...] = RIDGE_ALPHAS, standardize: bool = True) -> dict[str, Any]:
    """Ridge regression of the (N, K) targets on standardised features, alpha by efficient
    leave-one-out CV (scikit-learn's RidgeCV), written into ``head.fc``."""
    from sklearn.linear_model import RidgeCV

    fb = FeatureBasis.fit(feats.double().numpy(), block_dims, standardize)
    zr = fb.transform(feats.double().numpy())
    y = np.asarray(targets, dtype=np.float64).reshape(len(zr), -1)
    model = RidgeCV(alphas=alphas).fit(zr, y)
    _write(head.fc, fb, np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_))
    return {"alpha": float(model.alpha_)}


def _oof_path(zr: np.ndarray, y: np.ndarray, Cs: tuple[float, ...], cv: Any, cw: str | None) -> dict[float, np.ndarray]:
    """Out-of-fold P(label) for every C: one warm-started lbfgs path per fold (C ascending), so
    each fit starts from the more regularised solution instead of from zero."""
    from sklearn.linear_model import LogisticRegression

    oof = {c: np.zeros(len(y)) for c in Cs}
    for tr, te in cv.split(zr, y):
        lr = LogisticRegression(max_iter=1000, class_weight=cw, warm_start=True)
        for c in sorted(Cs):
            lr.set_params(C=c).fit(zr[tr], y[tr])
            oof[c][te] = lr.predict_proba(zr[te])[:, 1]
    return oof


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_one_vs_rest(feats: torch.Tensor, targets: np.ndarray, head: nn.Module, *,
                    block_dims: list[int] | None = None, C: float | None = None, balanced: bool = False,
                    standardize: bool = True, Cs: tuple[float, ...] = PROBE_CS, seed: int = 0) -> dict[str, Any]:
    """One binary logistic regression per label column of the (N, K) 0/1 targets, C per label by
    stratified CV (out-of-fold log-loss) unless given; a label that is always on (off) gets a
    constant large positive (negative) logit. Returns the median C and the out-of-fold
    probabilities at each label's chosen C (``label_C``; ``oof``, NaN where a label had too few positives to
    cross-validate), from which the task tunes decision thresholds without a validation split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    fb = FeatureBasis.fit(feats.double().numpy(), block_dims, standardize)
    zr = fb.transform(feats.double().numpy())
    y = np.asarray(targets) > 0.5
    cw = "balanced" if balanced else None
    coef, bias, label_c = np.zeros((y.shape[1], fb.dim)), np.zeros(y.shape[1]), [None] * y.shape[1]
    oof = np.full(y.shape, np.nan)
    for k in range(y.shape[1]):
        minority = int(min(y[:, k].sum(), (~y[:, k]).sum()))
        if minority == 0:
            bias[k] = 10.0 if y[:, k].all() else -10.0
            continue
        c = float(C or 1.0)
        if C is None and minority >= 2:
            cv = StratifiedKFold(min(5, minority), shuffle=True, random_state=seed)
            path = _oof_path(zr, y[:, k], Cs, cv, cw)
            c = min(path, key=lambda ci: (_log_loss(y[:, k], path[ci]), ci))  # ties: stronger regularisation
            oof[:, k] = path[c]
        lr = LogisticRegression(C=c, max_iter=2000, class_weight=cw).fit(zr, y[:, k])
        label_c[k] = c
        coef[k], bias[k] = lr.coef_[0], lr.intercept_[0]
    _write(head.fc, fb, coef, bias)
    chosen = [c for c in label_c if c is not None]
    return {"C": float(np.median(chosen)) if chosen else float(C or 1.0), "label_C": label_c, "oof": oof}
