"""logmel: log-mel statistics, the from-scratch rung for audio."""
import numpy as np
import torch

from headstart import recipes
from headstart.backbones import build_backbone
from headstart.selection.planner import ladder_for


def _tone(freq: float, seconds: float, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return torch.sin(2 * torch.pi * freq * t)


def test_features_are_means_and_spreads_of_the_log_mel_and_its_deltas():
    bb = build_backbone("logmel:80")
    wave = _tone(440.0, 0.5)[None]
    f = bb.forward_features({"waveform": wave, "lengths": torch.tensor([wave.shape[1]])})
    assert f.shape == (1, 320)
    mean, std, dmean, dstd = f[0].split(80)
    assert int(mean.argmax()) == int(bb.filters[:, round(440 / 40)].argmax())  # the 440 Hz bin is loudest
    assert float(dstd.mean()) < float(std.mean()) + 1e-6 or float(std.mean()) == 0.0  # a steady tone barely changes


def test_a_padded_clip_gets_exactly_its_own_features():
    bb = build_backbone("logmel:80")
    short, long = _tone(300.0, 0.3), _tone(1000.0, 1.0)
    alone = bb.forward_features({"waveform": short[None], "lengths": torch.tensor([len(short)])})
    batch = torch.zeros(2, len(long))
    batch[0, :len(short)], batch[1] = short, long
    both = bb.forward_features({"waveform": batch, "lengths": torch.tensor([len(short), len(long)])})
    np.testing.assert_allclose(both[0].numpy(), alone[0].numpy(), rtol=1e-4, atol=1e-4)


def test_audio_compares_transfer_with_logmel_and_not_with_text_or_image_baselines():
    rungs = ladder_for("audio")
    assert "logmel" in rungs and not {"tfidf", "zero_shot", "contrastive", "scratch", "rocket"} & set(rungs)
    assert "logmel" not in ladder_for("image") + ladder_for("text") + ladder_for("timeseries")
    assert recipes.scratch("audio")["backbone"] == "logmel:80"
