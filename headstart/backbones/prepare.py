"""Build a backbone for a given dataset: the spec plus the preprocessing fitted to the data."""
from __future__ import annotations

from dataclasses import replace

import torch

from headstart.backbones import Backbone, build_backbone
from headstart.data._base import LabeledData
from headstart.data.config import PretrainedCfg
from headstart.data.images import auto_image_size


def resolve_device(device: str | None) -> torch.device:
    """``"cpu"`` or no GPU: the CPU; else the named device, by default the first GPU."""
    return torch.device("cpu" if device == "cpu" or not torch.cuda.is_available() else (device or "cuda"))


def prepare_backbone(spec: str, data: LabeledData, *, image_size: int | None = None, multiscale: bool = True,
                     max_length: int | None = None, max_seconds: float | None = None, seed: int = 0,
                     pooling: str | None = None) -> Backbone:
    """Build ``spec`` and fit its preprocessing to the data (``data_cfg``), then what the
    backbone itself learns from the inputs (``adapt_to``: TF-IDF's vocabulary ...). ``pooling``:
    a text encoder's pooling instead of its own (``HFBackbone``'s modes)."""
    backbone = build_backbone(spec)
    if backbone.modality != data.modality:
        raise ValueError(f"backbone {spec!r} is for {backbone.modality} but the data are {data.modality}")
    cfg = data_cfg(backbone, data, image_size=image_size, multiscale=multiscale, max_length=max_length,
                   max_seconds=max_seconds, seed=seed)
    if pooling is not None and data.modality == "text":
        cfg = replace(cfg, pooling=pooling)
    if cfg != backbone.pretrained_cfg or data.modality in ("image", "audio"):  # set: installs taps, the window
        backbone.set_pretrained_cfg(cfg)
    backbone.adapt_to(data.items)
    return backbone


def data_cfg(backbone: Backbone, data: LabeledData, *, image_size: int | None = None, multiscale: bool = True,
             max_length: int | None = None, max_seconds: float | None = None, seed: int = 0) -> PretrainedCfg:
    """The backbone's preprocessing fitted to the data, without changing the backbone: the input
    size for small images (from the data unless given or fixed by the architecture), multi-scale
    taps on or off, the token limit for texts, the audio window (the longest clip, in whole
    seconds, unless given). The planner compares it across folds to share one backbone."""
    cfg = backbone.pretrained_cfg
    if data.modality == "image":
        size = cfg.input_size if cfg.fixed_input_size else (
            image_size or auto_image_size(data.items, cfg.input_size, seed=seed))
        taps, grid = (cfg.feature_taps, cfg.feature_grid) if multiscale else ((), 1)
        cfg = replace(cfg, input_size=int(size), feature_taps=taps, feature_grid=grid)
    if max_length and data.modality == "text":
        limit = getattr(backbone.tokenizer(), "model_max_length", max_length) or max_length
        cfg = replace(cfg, max_length=int(min(max_length, limit)))
    if data.modality == "audio":
        from headstart.data.audio import auto_seconds

        secs = min(cfg.max_seconds, max_seconds or auto_seconds(data.items, cfg.max_seconds, seed=seed))
        cfg = replace(cfg, max_seconds=float(secs))
    return cfg


def _headers(data: LabeledData, sample: int) -> list[tuple[int, int]]:
    """(frames, rate) from the file headers of up to ``sample`` clips."""
    from headstart.data.audio import audio_info

    out = []
    for item in data.items[:sample]:
        try:
            out.append(audio_info(item)[:2])
        except Exception:  # noqa: BLE001 - arrays, unreadable files: the pre-flight names those
            continue
    return out


def resampling_note(data: LabeledData, backbone: Backbone, sample: int = 256) -> str | None:
    """For audio: the sample rates found (file headers of up to ``sample`` clips) and the
    checkpoint's, said aloud when they differ ("resampling 22.05 kHz -> 16 kHz for whisper_tiny_en")."""
    if data.modality != "audio":
        return None
    rates = {rate for _, rate in _headers(data, sample)}
    target = backbone.pretrained_cfg.sampling_rate
    differ = sorted(r for r in rates if r != target)
    if not differ:
        return None
    return (f"resampling {', '.join(f'{r / 1000:g}' for r in differ)} kHz -> {target / 1000:g} kHz for "
            f"{backbone.spec} (the rate its weights were trained at)")



def window_note(data: LabeledData, backbone: Backbone, sample: int = 256) -> str | None:
    """For audio: clips longer than the window the backbone reads (AST: 10.24 s; Whisper: 30 s),
    said aloud rather than cut in silence."""
    if data.modality != "audio":
        return None
    longest = max((frames / rate for frames, rate in _headers(data, sample) if rate), default=0.0)
    window = backbone.pretrained_cfg.max_seconds
    if longest <= window:
        return None
    return (f"clips up to {longest:.1f} s are longer than the {window:g} s window of {backbone.spec}: predictions "
            f"read their first {window:g} s, training a random {window:g} s of each")


def series_note(data: LabeledData, backbone: Backbone) -> str | None:
    """For a fixed-window time-series encoder (PatchTST ...): how the series are padded or
    resampled to its context, said aloud ("padding series of up to 24 steps to PatchTST's context of 512")."""
    from headstart.backbones.hf_timeseries import HFSeriesBackbone

    return backbone.fit_note(data.items) if isinstance(backbone, HFSeriesBackbone) else None
