"""``prototype``: nearest class mean (Snell, Swersky, Zemel. "Prototypical Networks for Few-shot
Learning", NeurIPS 2017), on standardised features.

With squared Euclidean distance, -||z - m_c||^2 = 2 m_c.z - ||m_c||^2 - ||z||^2 and the last term
is the same for every class, so the nearest-mean classifier is a linear layer on the features:
this head is a ``LinearHead`` whose weights are computed from the class means, not trained.
"""
from __future__ import annotations

import numpy as np
import torch

from headstart.heads.feature_basis import FeatureBasis
from headstart.heads.linear import LinearHead

SCALES = np.logspace(-3, 2, 26)


class PrototypeHead(LinearHead):
    def fit_prototypes(self, feats: torch.Tensor, targets: np.ndarray, block_dims: list[int] | None = None
                       ) -> dict[str, float]:
        """Class means of the standardised features; the logit scale (a temperature) minimises
        the training log-loss, so probabilities are usable; the argmax does not depend on it."""
        fb = FeatureBasis.fit(feats.double().numpy(), block_dims)
        z = fb.transform(feats.double().numpy())  # (n, r); distances in the span are preserved
        present = np.unique(targets)
        means = np.zeros((self.num_classes, z.shape[1]))
        for c in present:
            means[c] = z[targets == c].mean(0)
        w, b = 2 * means, -(means ** 2).sum(1)
        scores = z @ w.T + b - (z ** 2).sum(1, keepdims=True)  # = -squared distance, (n, C)
        scores[:, np.setdiff1d(np.arange(self.num_classes), present)] = -np.inf
        d = -scores[:, present] / z.shape[1]  # per-dimension squared distances
        rows = np.searchsorted(present, targets)

        def nll(s: float) -> float:
            logit = -s * d
            logit -= logit.max(1, keepdims=True)
            return float(-(logit[np.arange(len(d)), rows] - np.log(np.exp(logit).sum(1))).mean())

        s = min(SCALES, key=nll)
        scale = s / z.shape[1]
        bias = np.where(np.isin(np.arange(self.num_classes), present), b * scale, -1e4)
        wf, bf = fb.fold_weights(w * scale, bias)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(wf).float())
            self.fc.bias.copy_(torch.from_numpy(bf).float())
        return {"scale": float(s), "train_accuracy": float((scores.argmax(1) == targets).mean())}
