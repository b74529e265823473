from collections import OrderedDict

import numpy as np
import pytest
import torch

from headstart.backbones import CATALOG, available_offline, build_backbone
from headstart.backbones.aisfx import AisfxBackbone, converted_weights, read_checkpoint


class OpensAFile:
    """Pickles as a call to ``open(marker, "w")``: what a hostile checkpoint would do on load."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _checkpoint(path, extra):
    """A file shaped like aiSFX's: (state dict, dataset table) with numpy scalars in the table."""
    state = OrderedDict({"embedding_net.conv_block1.conv1.weight": torch.arange(6.0).reshape(1, 1, 2, 3),
                         "fc.0.0.weight": torch.ones(2, 2)})
    torch.save((state, {"prosfx": (np.int64(0), 78), **extra}), path)
    return path


def test_the_allow_list_reads_numpy_scalars_and_keeps_only_the_embedding(tmp_path):
    sd = read_checkpoint(_checkpoint(tmp_path / "c.pth", {}))
    assert list(sd) == ["conv_block1.conv1.weight"] and torch.equal(sd["conv_block1.conv1.weight"][0, 0, 1],
                                                                   torch.tensor([3.0, 4.0, 5.0]))


def test_the_allow_list_refuses_a_pickle_with_any_other_global(tmp_path):
    marker = tmp_path / "opened"
    path = _checkpoint(tmp_path / "evil.pth", {"x": OpensAFile(str(marker))})
    with pytest.raises(ValueError, match=r"evil.pth: refused: the pickle needs io.open"):
        read_checkpoint(path)
    assert not marker.exists()  # nothing was executed
    other = _checkpoint(tmp_path / "float.pth", {"y": np.float64(1.5)})  # a numpy global it does not need
    with pytest.raises(ValueError, match="refused"):
        read_checkpoint(other)


def test_the_pickle_is_converted_once_then_read_from_safetensors(tmp_path):
    src, dest = _checkpoint(tmp_path / "c.pth", {}), tmp_path / "cache" / "aisfx.safetensors"
    first = converted_weights(src, dest)
    assert dest.is_file()
    src.unlink()  # the second load cannot read the pickle: it reads the safetensors file
    again = converted_weights(src, dest)
    assert list(again) == list(first) and torch.equal(again["conv_block1.conv1.weight"],
                                                      first["conv_block1.conv1.weight"])


def test_the_front_end_follows_the_paper_and_padding_does_not_change_a_clip():
    bb = AisfxBackbone().eval()
    assert bb.pretrained_cfg.sampling_rate == 44100 and bb.num_features == 512
    assert bb.log_mel(torch.zeros(1, 44100)).shape == (1, 44, 96)  # hop 1024, 96 mel bands
    g = torch.Generator().manual_seed(0)
    wave = 0.3 * torch.randn(2, 3 * 44100, generator=g)
    with torch.no_grad():
        both = bb({"waveform": wave, "lengths": torch.tensor([3 * 44100, 30000])})
        alone = bb({"waveform": wave[1:, :30000], "lengths": torch.tensor([30000])})
    assert torch.allclose(both[1], alone[0], atol=1e-5) and not torch.allclose(both[0], both[1])


def test_aisfx_is_a_catalog_entry_for_audio():
    e = CATALOG["aisfx"]
    assert e.spec == "aisfx:cnn" and e.modality == "audio" and e.license == "cc-by-4.0"


@pytest.mark.real
def test_aisfx_offline_embeds_a_synthetic_sound_in_512_d_deterministically():
    from headstart.backbones.aisfx import cached_weights_path, installed_checkpoint

    assert available_offline("aisfx"), "needs PyPI aisfx (pip install --no-deps aisfx)"
    bb = build_backbone("aisfx")
    assert cached_weights_path(installed_checkpoint()).is_file()  # converted on the first load
    t = np.arange(int(1.5 * 44100)) / 44100
    chirp = 0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t)
    noise = 0.2 * np.random.default_rng(0).standard_normal(len(t))
    batch = {"waveform": torch.tensor(np.stack([chirp, noise]), dtype=torch.float32),
             "lengths": torch.tensor([len(t), len(t)])}
    with torch.no_grad():
        a, b = bb(batch), build_backbone("aisfx")(batch)  # the second build reads the safetensors file
    assert a.shape == (2, 512) and torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert float(torch.nn.functional.cosine_similarity(a[0], a[1], dim=0)) < 0.99
