"""Audio reading and the transforms derived from a backbone's pretrained_cfg.

Decoding: soundfile (libsndfile 1.2: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF) — no FFmpeg.
Resampling: ``scipy.signal.resample_poly`` to the checkpoint's rate (16 kHz for Whisper and
wav2vec2). Why scipy: the ratio is exact and rational (44.1 kHz -> 16 kHz is 160/441), the
polyphase FIR (Kaiser window) is a proper anti-aliasing filter, and scipy is already installed
with scikit-learn; soxr would be a new dependency for a step that costs < 1 ms per second of audio.
A clip whose rate differs from the checkpoint's is always resampled (the wrong rate is the
classic silent failure, transformers #18944). Several channels are averaged (mono mixdown).
"""
from __future__ import annotations

from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.data._base import AUDIO_EXTENSIONS
from headstart.data.config import PretrainedCfg
from headstart.data.images import BadSampleError

__all__ = ["AUDIO_EXTENSIONS", "AudioDecoder", "AudioTransform", "audio_batch", "load_audio", "read_audio",
           "resample"]


def _where(item: Any, origin: str) -> str:
    return f"{origin} ({item})" if origin and isinstance(item, (str, Path)) and origin != str(item) else (
        origin or str(item))


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` (T,) at ``rate`` Hz -> at ``target`` Hz (polyphase, anti-aliased)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def read_audio(item: Any, origin: str = "") -> tuple[np.ndarray, int]:
    """(samples (T,) float32 mono, native rate) of a file (or file-like object); a 1-D float array is taken as is
    (rate 0: already at the model's rate). Unreadable, empty or non-finite audio raises
    ``BadSampleError`` naming the file."""
    where = _where(item, origin)
    if isinstance(item, np.ndarray):
        wave, rate = np.asarray(item, dtype=np.float32), 0
        if wave.ndim != 1:
            raise BadSampleError(f"{where}: an audio array must be 1-D (T,), got shape {wave.shape}")
    else:
        import soundfile as sf

        try:
            src = item if hasattr(item, "read") else str(item)  # a path, or bytes already in memory (serve)
            data, rate = sf.read(src, dtype="float32", always_2d=True)  # (T, C)
        except FileNotFoundError:
            raise BadSampleError(f"{where}: file not found") from None
        except Exception as e:  # libsndfile raises LibsndfileError, RuntimeError, TypeError ...
            raise BadSampleError(f"{where}: cannot read audio ({type(e).__name__}: {e})") from None
        wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if wave.size == 0:
        raise BadSampleError(f"{where}: zero-length audio (no samples)")
    if not np.isfinite(wave).all():
        raise BadSampleError(f"{where}: audio holds NaN or infinite samples")
    return wave, int(rate)


def load_audio(item: Any, origin: str = "", sampling_rate: int = 16000) -> np.ndarray:
    """Samples (T,) float32, mono, at ``sampling_rate``."""
    wave, rate = read_audio(item, origin)
    return resample(wave, rate, sampling_rate) if rate else wave


class AudioDecoder:
    """``(item, origin) -> waveform`` at the configured rate (a picklable callable for workers)."""

    def __init__(self, sampling_rate: int) -> None:
        self.sampling_rate = int(sampling_rate)

    def __call__(self, item: Any, origin: str = "") -> np.ndarray:
        return load_audio(item, origin, self.sampling_rate)


class AudioTransform:
    """Waveform (T,) -> float tensor (T',), cut to ``max_seconds``. Eval keeps the start; train
    takes a random window and adds light augmentation: gain (+-6 dB), a time shift (up to 0.1 s),
    Gaussian noise at 20-40 dB SNR and, half the time, SpecAugment's time mask (Park et al. 2019) on
    the waveform: one span of up to 10% of the clip silenced (frequency masks need the
    backbone's spectrogram, so they are not applied here). Randomness comes from torch's
    generator, so the loader's per-sample seeding makes it reproducible."""

    def __init__(self, cfg: PretrainedCfg, train: bool = False) -> None:
        self.max_samples = max(1, int(cfg.max_seconds * cfg.sampling_rate))
        self.shift = int(0.1 * cfg.sampling_rate)
        self.train = train

    def __call__(self, wave: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        if len(x) > self.max_samples:
            start = int(torch.randint(0, len(x) - self.max_samples + 1, ())) if self.train else 0
            x = x[start:start + self.max_samples]
        if not self.train:
            return x
        x = x * 10 ** (float(torch.empty(()).uniform_(-6, 6)) / 20)
        s = int(torch.randint(-self.shift, self.shift + 1, ()))
        if s:
            x = torch.roll(x, s)
            (x[:s] if s > 0 else x[s:]).zero_()
        power = x.pow(2).mean().clamp(min=1e-10)
        snr_db = float(torch.empty(()).uniform_(20, 40))
        x = x + torch.randn_like(x) * (power / 10 ** (snr_db / 10)).sqrt()
        width = int(torch.randint(0, max(1, len(x) // 10) + 1, ())) if float(torch.rand(())) < 0.5 else 0
        if width:  # SpecAugment's time mask, on the waveform
            start = int(torch.randint(0, len(x) - width + 1, ()))
            x[start:start + width] = 0.0
        return x


def audio_batch(pairs: list[tuple[torch.Tensor, Any]]) -> dict[str, Any]:
    """Collate (waveform, target) pairs: zero-padded to the longest, with each clip's length."""
    waves, targets = zip(*pairs)
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    out = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        out[i, :len(w)] = w
    return {"inputs": {"waveform": out, "lengths": lengths},  # (N, T), (N,)
            "targets": torch.as_tensor(np.stack([np.asarray(t) for t in targets]))}


def audio_info(item: Any) -> tuple[int, int, int]:
    """(frames, rate, channels) from the file header only (the pre-flight's cheap look)."""
    import soundfile as sf

    info = sf.info(str(item))
    return int(info.frames), int(info.samplerate), int(info.channels)


def auto_seconds(items: list[Any], native: float, sample: int = 256, seed: int = 0) -> float:
    """The window a clip is cut or padded to, from the data: the longest of (up to ``sample``)
    clips' durations, read from the file headers, rounded up to whole seconds, at most the
    backbone's ``native`` window. Keyword clips of 1 s then cost Whisper 2 s of encoder instead
    of 30."""
    durations = []
    pick = np.random.RandomState(seed).permutation(len(items))[:sample]
    for it in (items[i] for i in pick):
        try:
            frames, rate, _ = audio_info(it)
            durations.append(frames / rate)
        except Exception:  # noqa: BLE001 - arrays and unreadable files: the pre-flight names those
            continue
    if not durations:
        return float(native)
    return float(min(native, max(1, int(np.ceil(max(durations))))))

