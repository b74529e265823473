import numpy as np

from headstart.api import auto_workers
from headstart.backbones import build_backbone
from headstart.data._base import LabeledData
from headstart.data.loaders import make_loader


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
