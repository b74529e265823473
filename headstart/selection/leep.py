"""LEEP — Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability
of Learned Representations", ICML 2020.

Needs the backbone's source-task probabilities theta(x) (e.g. its ImageNet softmax). With the
empirical joint P(y, z) = mean_i [y_i = y] theta(x_i)_z, LEEP = mean_i log sum_z P(y_i | z)
theta(x_i)_z: the log-likelihood of the "expected empirical predictor". Higher is better (<= 0).
"""
from __future__ import annotations

import numpy as np


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    theta = np.asarray(source_probs, dtype=np.float64)
    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    joint = np.zeros((y.max() + 1, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= len(y)
    cond = joint / np.clip(joint.sum(0, keepdims=True), 1e-300, None)  # P(y | z)
    eep = (theta * cond[y]).sum(1)
    return float(np.log(np.clip(eep, 1e-300, None)).mean())
