"""AdaBN: BatchNorm statistics re-estimated on target inputs, exactly, and nothing lost on error."""
import pytest
import torch
from torch import nn

from headstart import Headstart
from headstart.adaptation.batchnorm import adapt_batchnorm
from tests.conftest import write_image_folder


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2), nn.Dropout(0.5))


def test_statistics_become_the_exact_mean_and_variance_of_the_target_inputs():
    model = _model().eval()
    target = torch.randn(48, 3) * 4 + 7  # equal batches: the average of batch means is the mean
    n = adapt_batchnorm(model, list(target.split(16)))
    bn = model[0]
    assert n == 1 and bn.momentum == 0.1 and not model.training  # the caller's mode and momentum back
    torch.testing.assert_close(bn.running_mean, target.mean(0), rtol=1e-5, atol=1e-5)
    # cumulative average over batches of the (unbiased) batch variances: close to the pooled one
    torch.testing.assert_close(bn.running_var, target.var(0), rtol=0.15, atol=0)


def test_a_failure_midway_keeps_the_source_statistics():
    model = _model()
    adapt_batchnorm(model, [torch.randn(20, 3) + 1])
    before = model[0].running_mean.clone()

    def batches():
        yield torch.randn(10, 3) * 9
        raise OSError("target file unreadable")

    with pytest.raises(OSError):
        adapt_batchnorm(model, batches())
    assert torch.equal(model[0].running_mean, before)


def test_fit_with_adabn_changes_only_batchnorm_statistics(tmp_path):
    src, tgt = write_image_folder(tmp_path / "src", 5), write_image_folder(tmp_path / "tgt", 4, seed=3)
    kw = dict(backbone="tiny:cnn", strategy="feature_extraction", verbose=False, test_size=0.0,
              runtime={"cache_dir": False})
    plain = Headstart(**kw).fit(src)
    adapted = Headstart(adapt="adabn", **kw).fit(src, unlabeled=tgt)
    a, b = plain.model_.state_dict(), adapted.model_.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)


def test_adabn_on_a_backbone_without_batchnorm_is_refused(text_data):
    with pytest.raises(ValueError, match="no BatchNorm layers"):
        Headstart(backbone="tiny:bert", adapt="adabn", verbose=False, runtime={"cache_dir": False}).fit(
            text_data[0], unlabeled=["some text", "more text"])
