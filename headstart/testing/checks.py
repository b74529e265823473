"""Conformance checks run over every registered entry (scikit-learn's check_estimator idea):
a new backbone source or strategy passes these or it is not done."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from headstart.backbones._base import AUDIO, IMAGE, Backbone
from headstart.data.config import TIMESERIES
from headstart.backbones.local import load_local, save_local


def example_batch(bb: Backbone, n: int = 2):
    if bb.modality == IMAGE:
        s = bb.pretrained_cfg.input_size
        return torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(0))
    if bb.modality == TIMESERIES:  # unequal lengths: the second series is padded
        series = torch.randn(n, bb.pretrained_cfg.channels, 40, generator=torch.Generator().manual_seed(0))
        return {"series": series, "lengths": torch.tensor([40, 31][:n])}
    if bb.modality == AUDIO:  # unequal lengths: the second clip is zero-padded
        sr = bb.pretrained_cfg.sampling_rate
        wave = 0.3 * torch.randn(n, sr, generator=torch.Generator().manual_seed(0))
        lengths = torch.tensor([sr, sr * 3 // 5][:n])
        wave[1:, int(lengths[-1]):] = 0
        return {"waveform": wave, "lengths": lengths}
    from headstart.data.text import TextCollator
    texts = ["a small test sentence", "another one, longer than the first sentence"][:n]
    return TextCollator(bb.tokenizer(), bb.pretrained_cfg.max_length)(texts)


def check_backbone(bb: Backbone) -> None:
    """Shapes, layer groups (every parameter exactly once, ordered input -> output) and an
    offline save/rebuild round trip that reproduces the outputs."""
    bb.eval()
    batch = example_batch(bb)
    with torch.no_grad():
        feats = bb.forward_features(batch)
    assert feats.shape == (2, bb.num_features), f"{bb.spec}: features {tuple(feats.shape)}"
    groups = bb.layer_groups()
    if any(True for _ in bb.parameters()):  # a backbone without parameters (TF-IDF) has none to group
        assert len(groups) >= 2, f"{bb.spec}: needs at least 2 layer groups"
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)), f"{bb.spec}: a parameter is in two groups"
    assert set(ids) == {id(p) for p in bb.parameters()}, f"{bb.spec}: groups miss parameters"
    order = {id(p): i for i, p in enumerate(bb.parameters())}
    firsts = [min(order[id(p)] for p in g) for g in groups]
    assert firsts == sorted(firsts), f"{bb.spec}: groups are not ordered input -> output"
    with tempfile.TemporaryDirectory() as d:
        save_local(bb, Path(d))
        again = load_local(d).eval()
        with torch.no_grad():
            torch.testing.assert_close(again.forward_features(batch), feats)
        assert again.pretrained_cfg == bb.pretrained_cfg
