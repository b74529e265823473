import numpy as np
import pytest
import torch

from headstart.api import auto_workers
from headstart.backbones import build_backbone
from headstart.backbones.tiny import tiny_bert
from headstart.data._base import LabeledData
from headstart.data.loaders import FeatureBatches, feature_loader, in_input_order, make_loader
from headstart.heads import build_head
from headstart.model import TransferModel
from headstart.training.loop import predict_logits


def test_training_loader_decodes_each_image_once_across_epochs(tmp_path, monkeypatch):
    from PIL import Image

    import headstart.data.loaders as loaders
    paths = []
    for i in range(6):
        Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    calls = []
    real = loaders.load_image
    monkeypatch.setattr(loaders, "load_image", lambda item, origin="": calls.append(item) or real(item, origin))
    data = LabeledData(paths, [0, 1] * 3, "image")
    loader = make_loader(data, np.array([0, 1] * 3), build_backbone("tiny:cnn").pretrained_cfg, train=True, batch_size=4)
    for epoch in range(3):
        loader.sampler.use_epoch(epoch)
        assert sum(len(b["targets"]) for b in loader) == 6
    assert len(calls) == 6


def test_auto_workers_leave_a_core_and_skip_texts_and_small_sets(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert auto_workers("image", 1000) == 3
    assert auto_workers("image", 100) == 0 and auto_workers("text", 10_000) == 0


def test_length_sorted_text_inference_returns_rows_in_input_order():
    """Batches by token length (longest first) to pad little; the outputs come back in the
    inputs' order, identical to an unsorted pass."""
    bb = tiny_bert().eval()
    texts = ["short", "a much longer text with many more words in it", "mid length text", "x y", "four words right here"]
    data = LabeledData(texts, None, "text", [f"row {i}" for i in range(len(texts))])
    loader = make_loader(data, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=2, by_length=True)
    assert loader.order[0] == 1 and sorted(loader.order) == list(range(5))
    model = TransferModel(bb, build_head("linear", bb.num_features, 2)).eval()
    plain = make_loader(data, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=1)
    torch.testing.assert_close(predict_logits(model, loader, "cpu"), predict_logits(model, plain, "cpu"))
    rows = torch.arange(5.0)[loader.order]  # what a sorted pass yields: row k is input order[k]
    assert in_input_order(rows, loader).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("weights", [None, np.linspace(1, 3, 37)])
def test_feature_batches_are_the_feature_loaders_batches(weights):
    x, y = torch.randn(37, 5), np.arange(37) % 4
    plain = feature_loader(x, y, batch_size=8, seed=3, weights=weights)
    fast = FeatureBatches(x, y, batch_size=8, seed=3, weights=weights)
    assert len(fast) == len(plain) == 5 and len(fast.dataset) == 37 and fast.batch_size == 8
    for epoch, skip in ((0, 0), (2, 16)):  # a later epoch, resumed after two batches
        plain.sampler.use_epoch(epoch, skip)
        fast.sampler.use_epoch(epoch, skip)
        got, want = list(fast), list(plain)
        assert len(got) == len(want) == (3 if skip else 5)
        for a, b in zip(got, want):
            assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["targets"], b["targets"])
