"""LogME — You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021.

The log marginal evidence of a Bayesian linear model from features to each one-hot label column,
with the prior precision alpha and noise precision beta set by evidence maximisation (the
paper's fixed-point iteration, on the SVD of the features), averaged over classes and divided by
the number of samples. Higher is better; no training, no hyper-parameters.
"""
from __future__ import annotations

import numpy as np


def _evidence(s2: np.ndarray, proj: np.ndarray, y_sq: float, n: int, d: int,
              iters: int = 100) -> tuple[float, float, float]:
    """(evidence per sample, alpha, beta) for one target. ``s2``: squared singular values (k,),
    ``proj``: U^T y."""
    alpha, beta = 1.0, 1.0
    resid_extra = y_sq - float((proj ** 2).sum())  # part of y outside the span of the features
    for _ in range(iters):
        gamma = float((beta * s2 / (alpha + beta * s2)).sum())
        m2 = float((beta ** 2 * s2 * proj ** 2 / (alpha + beta * s2) ** 2).sum())  # ||m||^2
        res2 = float((alpha ** 2 * proj ** 2 / (alpha + beta * s2) ** 2).sum()) + resid_extra
        new_alpha = gamma / (m2 + 1e-12)
        new_beta = (n - gamma) / (res2 + 1e-12)
        done = abs(new_alpha - alpha) / alpha < 1e-5 and abs(new_beta - beta) / beta < 1e-5
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2 = float((beta ** 2 * s2 * proj ** 2 / (alpha + beta * s2) ** 2).sum())
    res2 = float((alpha ** 2 * proj ** 2 / (alpha + beta * s2) ** 2).sum()) + resid_extra
    logdet = float(np.log(alpha + beta * s2).sum()) + (d - len(s2)) * np.log(alpha)
    ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - beta / 2 * res2 - alpha / 2 * m2
          - logdet / 2 - n / 2 * np.log(2 * np.pi))
    return float(ev / n), alpha, beta


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean LogME over one-vs-rest label columns. ``features`` (n, D), ``labels`` (n,) ints."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * 1e-10 if s.size else s.astype(bool)
    u, s2 = u[:, keep], s[keep] ** 2
    scores = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        scores.append(_evidence(s2, u.T @ t, float(t @ t), n, d)[0])
    return float(np.mean(scores))
