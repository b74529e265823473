"""H-score — Bao, Li, Huang, Zheng, Kuo, Hsu. "An Information-Theoretic Approach to
Transferability in Task Transfer Learning", ICIP 2019; with the shrinkage (Ledoit-Wolf)
covariance estimator of Ibrahim, Ponomareva, Mazumder. "Newer is Not Always Better: Rethinking
Transferability Metrics, Their Peculiarities, Stability and Performance", ECML-PKDD 2022.

H(f) = tr(cov(f)^-1 cov(E[f | y])): how much of the features' variance the class means explain.
Plain H-score inverts an ill-conditioned covariance when D is large against n; the shrinkage
estimate keeps it stable. Higher is better.
"""
from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf


def h_score(features: np.ndarray, labels: np.ndarray, shrinkage: bool = True) -> float:
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(0)
    y = np.asarray(labels)
    cov = LedoitWolf(assume_centered=True).fit(f).covariance_ if shrinkage else np.cov(f, rowvar=False)
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(0)
    cov_between = means.T @ means / len(f)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-12) @ cov_between))
