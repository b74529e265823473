"""NCE — Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification
Tasks", ICCV 2019.

Negative conditional entropy -H(Y | Z) of the target labels Y given the source task's labels
Z = argmax of the backbone's source-task probabilities. Higher is better (<= 0)."""
from __future__ import annotations

import numpy as np


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(source_probs).argmax(1)
    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    joint = np.zeros((y.max() + 1, z.max() + 1))
    np.add.at(joint, (y, z), 1.0)
    joint /= len(y)
    pz = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / np.broadcast_to(pz, joint.shape)[nz])).sum())
