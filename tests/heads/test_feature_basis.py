import numpy as np
import pytest
import torch
from accelerate import Accelerator

from headstart.heads import build_head
from headstart.strategies import FeatureExtraction
from headstart.tasks import ClassificationTask
from headstart.training.context import FitContext, Split
from headstart.heads.feature_basis import FeatureBasis
from headstart.training.trainer import Trainer


def _x(n, d, seed=0):
    return np.random.RandomState(seed).randn(n, d) * np.linspace(0.1, 10, d) + 3.0


def test_reduced_coordinates_have_the_rank_of_the_training_rows():
    fb = FeatureBasis.fit(_x(20, 300))
    assert fb.dim == 19  # centred: rank n - 1
    assert fb.transform(_x(5, 300, seed=1)).shape == (5, 19)


def test_no_rotation_when_rows_outnumber_features():
    fb = FeatureBasis.fit(_x(50, 10))
    assert fb.basis is None and fb.dim == 10


def test_folded_layer_on_raw_features_equals_reduced_layer_on_transformed_features():
    fb = FeatureBasis.fit(_x(30, 200), block_dims=[150, 50])
    reduced, raw = torch.nn.Linear(fb.dim, 4).double(), torch.nn.Linear(200, 4).double()
    fb.fold(reduced, raw)
    xt = _x(7, 200, seed=2)
    with torch.no_grad():
        want = reduced(torch.from_numpy(fb.transform(xt)))
        got = raw(torch.from_numpy(xt))
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-8)


def test_block_dims_must_add_up():
    with pytest.raises(ValueError, match="do not add up"):
        FeatureBasis.fit(_x(5, 10), block_dims=[3, 3])


@pytest.mark.parametrize("hidden", [[16], []])
def test_mlp_head_trained_on_reduced_features_applies_to_raw_features(hidden, tmp_path):
    rng = np.random.RandomState(0)
    y = np.arange(40) % 3
    x = torch.tensor(rng.randn(40, 500) + np.eye(3)[y] @ rng.randn(3, 500), dtype=torch.float32)
    head = build_head("mlp", 500, 3, hidden=hidden, dropout=0.0)
    ctx = FitContext(accelerator=Accelerator(cpu=True), log=lambda m: None)
    task = ClassificationTask(label_smoothing=0.0).fit_targets([0, 1, 2])
    Trainer(ctx)._train_head(head, task, x, Split(None, y), None, None,
                             FeatureExtraction(steps=200, lr=1e-2, weight_decay=0.0), None, True)
    head.eval()
    with torch.no_grad():
        assert (head(x).argmax(1).numpy() == y).mean() == 1.0  # separable: fitted on raw inputs
