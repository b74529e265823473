import numpy as np
import pytest
import torch

from headstart.api import Headstart
from headstart.heads import build_head


def test_cosine_head_scores_scaled_cosine_similarity_plus_offset():
    head = build_head("cosine", 3, 2)
    head.set_class_vectors(torch.tensor([[2.0, 0, 0], [0, 5.0, 0]]), scale=10.0, offsets=torch.tensor([0.5, -1.0]))
    logits = head(torch.tensor([[3.0, 0, 0], [1.0, 1.0, 0]]))  # the feature's norm does not matter
    assert torch.allclose(logits, torch.tensor([[10.5, -1.0], [10 / 2 ** 0.5 + 0.5, 10 / 2 ** 0.5 - 1.0]]))


def test_cosine_head_refuses_class_vectors_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"class vectors \(2, 4\), expected \(2, 3\)"):
        build_head("cosine", 3, 2).set_class_vectors(torch.ones(2, 4))


def test_cosine_head_trains_with_the_loss_like_any_head(image_data):
    est = Headstart(backbone="tiny:cnn", strategy="feature_extraction", head="cosine",
                    strategy_params={"steps": 300, "lr": 1e-2}, verbose=False).fit(image_data[0], test=image_data[1])
    proba = est.predict_proba(image_data[1])
    assert proba.shape == (18, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert est.metrics_["test"]["accuracy"] > 1 / 3
