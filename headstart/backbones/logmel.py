"""``logmel:80`` — log-mel statistics as a backbone: the from-scratch rung for audio, as TF-IDF is
for text and ROCKET for time series. Nothing is pretrained and nothing trains: per clip, the
mean and standard deviation over time of an 80-bin log-mel spectrogram and of its first
difference (4 x 80 = 320 values), then a linear head on the cached features (the probe). On
headstart's spoken-keyword benchmark this is the "log-mel + logistic regression" baseline
(benchmarks/audio_keywords.py).

The spectrogram is Whisper's front end in torch: 16 kHz, 25 ms Hann window (n_fft 400), 10 ms
hop, Slaney mel filters up to 8 kHz, log10 of the power clamped at 1e-10; each clip is transformed
from its own samples (a padded clip gets exactly its own features).
"""
from __future__ import annotations

from pathlib import Path

import torch

from headstart.backbones._base import AUDIO, Backbone, PretrainedCfg

RATE, N_FFT, HOP = 16000, 400, 160
DEFAULT_BINS = 80


class LogMelStats(Backbone):
    def __init__(self, bins: int = DEFAULT_BINS, spec: str | None = None) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.bins = int(bins)
        self.spec = spec or f"logmel:{self.bins}"
        self.num_features = 4 * self.bins
        self.pretrained_cfg = PretrainedCfg(modality=AUDIO, source=self.spec, pooling="mean_std",
                                            license="none (no weights)", sampling_rate=RATE, max_seconds=30.0)
        fb = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=self.bins, min_frequency=0.0,
                             max_frequency=RATE / 2, sampling_rate=RATE, norm="slaney", mel_scale="slaney")
        self.register_buffer("filters", torch.as_tensor(fb, dtype=torch.float32).T.contiguous(),
                             persistent=False)  # (bins, n_fft / 2 + 1)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, 4 bins)
        wave, lengths = batch["waveform"].float(), batch["lengths"]  # (N, T), (N,)
        return torch.stack([self._clip(w[:max(int(n), 1)]) for w, n in zip(wave, lengths.tolist())])

    def _clip(self, wave: torch.Tensor) -> torch.Tensor:
        """(4 bins,) of one clip, from its own samples (the STFT's edge padding never sees the batch's)."""
        spec = torch.stft(wave, N_FFT, HOP, window=self.window, return_complex=True,
                          pad_mode="reflect" if len(wave) > N_FFT // 2 else "constant").abs().pow(2)  # (F, frames)
        mel = torch.log10((self.filters @ spec).clamp(min=1e-10))  # (bins, frames)
        delta = mel.diff(dim=-1) if mel.shape[-1] > 1 else torch.zeros_like(mel)
        return torch.cat([mel.mean(-1), mel.std(-1, correction=0), delta.mean(-1), delta.std(-1, correction=0)])

    def layer_groups(self) -> list[list[torch.nn.Parameter]]:
        return []  # fixed features: nothing to train

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "logmel", str(self.bins))


def build(name: str, pretrained: bool = True) -> Backbone:
    """``logmel:<bins>`` (``logmel:`` alone: 80 bins); ``pretrained`` has no meaning here."""
    try:
        bins = int(name or DEFAULT_BINS)
    except ValueError:
        raise KeyError(f"logmel:{name}: expected logmel:<mel bins>, e.g. logmel:80") from None
    if not 8 <= bins <= 201:
        raise KeyError(f"logmel:{name}: between 8 and 201 mel bins")
    return LogMelStats(bins)
