"""k-nearest-neighbour accuracy by stratified cross-validation on (standardised) features: the
simplest empirical transferability score (used as a baseline by every score paper, e.g. Kornblith,
Shlens, Le. "Do Better ImageNet Models Transfer Better?", CVPR 2019). Higher is better."""
from __future__ import annotations

import numpy as np


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    from sklearn.model_selection import (  # sklearn only when scoring
        StratifiedKFold,
        cross_val_score,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    folds = int(min(folds, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    if folds < 2:
        raise ValueError("k-NN accuracy needs at least 2 examples of every class")
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, metric="cosine"))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, np.asarray(features), y, cv=cv).mean())
