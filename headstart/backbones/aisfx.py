"""``aisfx:cnn`` — the sound-effects embedding of aiSFX (model X-Sequential-CE), 512-d.

Reference: A. B. Ma and A. Lerch, "Representation Learning for the Automatic Indexing of Sound
Effects Libraries", ISMIR 2022 (weights CC BY 4.0, PyPI ``aisfx``, install with ``--no-deps``:
it pins librosa/numpy versions headstart does not need). The network is the 9-layer CNN of the
DCASE 2018 cross-task baseline (four blocks of two 3x3 conv + BN + ReLU, max-pooled), rebuilt
here: the package's own modules import librosa and are never imported.

Weights: the package ships a pickle (``models/checkpoint.pth``) holding (state dict, dataset
table) with numpy scalars in the table. It is read once with ``torch.load(weights_only=True)``
under an allow-list naming exactly the numpy globals it uses (``ALLOWED_NUMPY_GLOBALS``; anything
else is refused, never ``weights_only=False``), its ``embedding_net`` tensors are written to a
safetensors file in the cache, and every later load reads that file.

Preprocessing (as in the paper's Essentia pipeline): 44.1 kHz mono, 2048-sample Hann frames,
hop 1024, power spectrum, 96 HTK-mel bands (0-22.05 kHz, triangles in mel space, each band's
weights summing to 1), ``log10(1e4 * x + 1)`` divided by the paper's maximum 9.4578. The model
embeds blocks of 100 frames (2.3 s, hop 50 frames, a last partial block dropped, a short clip
zero-padded to one block); a clip's feature is the mean over its blocks.
"""
from __future__ import annotations

import importlib.metadata
import logging
import pickle
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from headstart._files import cache_root
from headstart.backbones._base import AUDIO, Backbone, PretrainedCfg
from headstart.backbones.archive import package_file

log = logging.getLogger(__name__)

SAMPLE_RATE, N_FFT, HOP, MEL_BINS = 44100, 2048, 1024, 96
BLOCK, BLOCK_HOP = 100, 50  # frames per embedded block (~2.3 s) and its hop (50 %)
SPEC_MAX = 9.457798957824707  # the paper's min-max normalisation (min 0) over all its datasets
WIDTHS = (64, 128, 256, 512)
CHECKPOINT = "aisfx/models/checkpoint.pth"


def _numpy_scalar() -> object:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


# The only globals the checkpoint needs beyond tensors and OrderedDict: np.int64 scalars in its
# dataset table (``numpy.core.multiarray.scalar`` rebuilding from ``numpy.dtype`` 'i8'). The
# pickle names the numpy-1 path; numpy 2 moved it to ``numpy._core``, so both names are allowed.
ALLOWED_NUMPY_GLOBALS = [(_numpy_scalar(), "numpy.core.multiarray.scalar"),
                         (_numpy_scalar(), "numpy._core.multiarray.scalar"),
                         np.dtype, np.dtypes.Int64DType]


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``embedding_net`` tensors of an aiSFX pickle, read with ``weights_only=True`` under
    ``ALLOWED_NUMPY_GLOBALS``; a pickle needing any other global is refused, naming it."""
    try:
        with torch.serialization.safe_globals(ALLOWED_NUMPY_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+) was not an allowed global|but got (<class [^>]+>)", str(e))
        why = next(g for g in found.groups() if g) if found else type(e).__name__
        raise ValueError(f"{path}: refused: the pickle needs {why}, outside the aiSFX allow-list "
                         "(numpy int64 scalars only); nothing in it was run") from None
    state = obj[0] if isinstance(obj, tuple) and obj else obj
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: not an aiSFX checkpoint (expected (state dict, dataset table))")
    prefix = "embedding_net."
    out = {k[len(prefix):]: v.float() if v.is_floating_point() else v
           for k, v in state.items() if k.startswith(prefix)}
    if not out:
        raise ValueError(f"{path}: no 'embedding_net.*' tensors in the checkpoint")
    return out


def converted_weights(checkpoint: str | Path, dest: str | Path) -> dict[str, torch.Tensor]:
    """The embedding's tensors from ``dest`` (safetensors); on the first call, converted from the
    pickle ``checkpoint`` and written there (atomically), so the pickle is read once."""
    dest = Path(dest)
    if dest.is_file():
        return load_file(str(dest))
    state = read_checkpoint(checkpoint)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
              metadata={"source": "PyPI aisfx models/checkpoint.pth (embedding_net)", "license": "CC-BY-4.0"})
    tmp.replace(dest)
    log.info("aisfx: converted %s once to %s", checkpoint, dest)
    return state


def installed_checkpoint() -> Path | None:
    """The pickle shipped by PyPI ``aisfx`` (located without importing the package), or None."""
    return package_file("aisfx", CHECKPOINT)


def cached_weights_path(checkpoint: Path) -> Path:
    version = importlib.metadata.version("aisfx")
    return cache_root() / "weights" / f"aisfx-{version}-{checkpoint.stat().st_size}.safetensors"


def mel_filters() -> torch.Tensor:
    """(1025, 96) HTK-mel triangles built in mel space, each band's weights summing to 1
    (Essentia's ``warping`` weighting with ``unit_sum``)."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(N_FFT // 2 + 1, MEL_BINS, 0.0, SAMPLE_RATE / 2, SAMPLE_RATE, norm=None,
                         mel_scale="htk", triangularize_in_mel_space=True)
    return torch.from_numpy(fb / np.maximum(fb.sum(0, keepdims=True), 1e-12)).float()


class ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) with BatchNorm and ReLU, then max pooling."""

    def __init__(self, cin: int, cout: int, pool: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.max_pool2d(x, self.pool) if self.pool > 1 else x


class AisfxBackbone(Backbone):
    """Log-mel front end (no parameters) + the 9-layer CNN; features (N, 512)."""

    def __init__(self, spec: str = "aisfx:cnn", license: str = "cc-by-4.0") -> None:
        super().__init__()
        self.spec = spec
        widths = (1,) + WIDTHS
        for i in range(4):  # names as in the checkpoint: conv_block{1..4}.{conv,bn}{1,2}
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1], pool=2 if i < 3 else 1))
        self.register_buffer("mel", mel_filters(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=False), persistent=False)
        self.pretrained_cfg = PretrainedCfg(modality=AUDIO, source=spec, license=license, pooling="mean",
                                            sampling_rate=SAMPLE_RATE, max_seconds=30.0)
        self.num_features = WIDTHS[-1]

    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block{i + 1}") for i in range(4)]

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, frames, 96)
        spec = torch.stft(wave.float(), N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs().pow(2)  # (N, 1025, frames)
        return torch.log10(1e4 * (spec.transpose(1, 2) @ self.mel) + 1) / SPEC_MAX

    def embed(self, blocks: torch.Tensor) -> torch.Tensor:  # (B, 100, 96) -> (B, 512)
        x = blocks.unsqueeze(1)
        for b in self.blocks():
            x = b(x)
        return x.mean(3).amax(2)  # mean over mel bands, max over time

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, 512)
        wave, lengths = batch["waveform"], batch["lengths"]  # (N, T), (N,)
        keep = torch.arange(wave.shape[1], device=wave.device)[None] < lengths.to(wave.device)[:, None]
        mel = self.log_mel(wave * keep)  # samples past a clip's length are silence, whatever the batch held
        chunks, owner = [], []
        for i, n in enumerate((lengths // HOP + 1).clamp(max=mel.shape[1]).tolist()):
            clip = F.pad(mel[i, :n], (0, 0, 0, max(0, BLOCK - n)))  # (max(n, 100), 96)
            blocks = clip.unfold(0, BLOCK, BLOCK_HOP).transpose(1, 2)  # (b, 100, 96)
            chunks.append(blocks)
            owner += [i] * len(blocks)
        emb = self.embed(torch.cat(chunks))  # (sum b, 512)
        idx = torch.tensor(owner, device=emb.device)
        total = torch.zeros(len(lengths), emb.shape[1], device=emb.device, dtype=emb.dtype).index_add_(0, idx, emb)
        return total / torch.bincount(idx, minlength=len(lengths)).clamp(min=1).unsqueeze(1).to(emb.dtype)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(b.parameters()) for b in self.blocks()]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "aisfx", "cnn")


def pretrained_aisfx(spec: str = "aisfx:cnn") -> AisfxBackbone:
    """The CNN with the aiSFX weights (converted once to safetensors in the cache)."""
    ckpt = installed_checkpoint()
    if ckpt is None:
        raise FileNotFoundError("aisfx: the weights ship in the PyPI package 'aisfx' (CC BY 4.0), which is not "
                                "installed: pip install --no-deps aisfx (or use scratch:aisfx:cnn)")
    bb = AisfxBackbone(spec=spec)
    bb.load_state_dict(converted_weights(ckpt, cached_weights_path(ckpt)), strict=True)
    return bb.eval()


def build(name: str, pretrained: bool = True) -> Backbone:
    """The ``aisfx:`` source: ``aisfx:cnn`` (the X-Sequential-CE weights, or random init)."""
    if name != "cnn":
        raise KeyError(f"unknown aisfx backbone {name!r}; known: cnn")
    return pretrained_aisfx() if pretrained else AisfxBackbone(license="none (random initialisation)")
