import numpy as np
import torch
from sklearn.neighbors import NearestCentroid

from headstart.heads import build_head


def test_prototype_head_predicts_like_nearest_centroid_on_standardised_features():
    rng = np.random.RandomState(0)
    y = np.arange(60) % 3
    x = rng.randn(3, 200)[y] * 2 + rng.randn(60, 200) + 5  # D > n: the span-reduced path
    head = build_head("prototype", 200, 4)  # class 3 never seen
    head.fit_prototypes(torch.tensor(x).float(), y)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    ref = NearestCentroid().fit((x - mu) / sd, y)
    q = rng.randn(100, 200) * 3 + 5
    logits = head(torch.tensor(q).float())
    assert (logits.argmax(1).numpy() == ref.predict((q - mu) / sd)).all()
    assert (logits.argmax(1) != 3).all()  # an absent class is never predicted
