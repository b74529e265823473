"""H-score — Bao, Li, Huang, Zheng, Kuo, Hsu. "An Information-Theoretic Approach to
Transferability in Task Transfer Learning", ICIP 2019; with the shrinkage (Ledoit-Wolf)
covariance estimator of Ibrahim, Ponomareva, Mazumder. "Newer is Not Always Better: Rethinking
Transferability Metrics, Their Peculiarities, Stability and Performance", ECML-PKDD 2022.

H(f) = tr(cov(f)^-1 cov(E[f | y])): how much of the features' variance the class means explain.
Plain H-score inverts an ill-conditioned covariance when D is large against n; the shrinkage
estimate keeps it stable. Higher is better.

Multi-scale features have D ~ 7000 > n, so everything is computed in sample space from the
Gram matrix X X^T (n x n): the Ledoit-Wolf shrinkage and the trace need only ||S||_F, tr(S) and
the row norms, and the between-class covariance lives in the span of the rows. Cost O(n^2 D)
instead of O(D^3); the result equals scikit-learn's ``LedoitWolf`` route (tested).
"""
from __future__ import annotations

import numpy as np


def ledoit_wolf_gram(gram: np.ndarray, d: int) -> tuple[float, float]:
    """(shrinkage, mu) of the Ledoit-Wolf estimate (1 - s) S + s mu I for centred rows X with
    ``gram = X X^T`` and S = X^T X / n (scikit-learn's formula, in sample space)."""
    n = len(gram)
    mu = float(np.trace(gram)) / (n * d)
    s_fro2 = float((gram ** 2).sum()) / n ** 2  # ||S||_F^2
    row2 = np.diag(gram)
    beta_ = float((row2 ** 2).sum()) / n ** 2 - s_fro2 / n  # (1/n^2) sum_i ||x_i x_i^T - S||_F^2
    delta = s_fro2 - 2 * mu * float(np.trace(gram)) / n + d * mu ** 2  # ||S - mu I||_F^2
    beta_ = min(max(beta_, 0.0), delta)
    return (0.0 if delta == 0 else beta_ / delta), mu


def h_score(features: np.ndarray, labels: np.ndarray, shrinkage: bool = True) -> float:
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(0)
    n, d = f.shape
    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    gram = f @ f.T  # (n, n)
    evals, vecs = np.linalg.eigh(gram)  # f = U diag(sqrt(evals)) V^T, U = vecs
    keep = evals > evals.max() * 1e-12
    sig2, u = evals[keep], vecs[:, keep]  # singular values squared, left singular vectors
    s, mu = ledoit_wolf_gram(gram, d) if shrinkage else (0.0, 0.0)
    cov_eig = (1 - s) * sig2 / n + s * mu  # eigenvalues of the covariance on the row span
    # class means in V-coordinates: M = onehot-average of rows; V^T m_c = diag(sqrt(sig2)) U^T a_c
    onehot = np.eye(y.max() + 1)[y]  # (n, C)
    avg = onehot / onehot.sum(0, keepdims=True)  # (n, C): column c averages the rows of class c
    means_v = (u.T @ avg) * np.sqrt(sig2)[:, None]  # (r, C) class means in the V basis
    weights = onehot.mean(0)  # class frequencies: cov_between = sum_c p_c m_c m_c^T
    inv = np.where(cov_eig > 0, 1.0 / np.where(cov_eig > 0, cov_eig, 1.0), 0.0)
    return float(((means_v ** 2) * inv[:, None] * weights[None, :]).sum())
