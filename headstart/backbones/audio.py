"""Audio encoders from transformers (Whisper's encoder, wav2vec2, HuBERT, WavLM, AST) with their
feature extractors, pooled over the frames that hold the clip.

The data layer hands over waveforms at the checkpoint's rate (``pretrained_cfg.sampling_rate``)
with their lengths; the backbone's own feature extractor turns them into model inputs (Whisper:
an 80-bin log-mel of the clip padded to 30 s; wav2vec2: the normalised waveform), so the
preprocessing travels with the weights. Whisper's encoder reads a fixed window (30 s as
trained; ``prepare_backbone`` shortens it to the data's longest clip, in whole seconds): the mean
is taken over the frames the clip covers, not the padding (``pooling="mean"``; ``"mean_all"``
averages every frame of the window).

AST (Audio Spectrogram Transformer, ``hf:MIT/ast-finetuned-audioset-10-10-0.4593``) reads a
128-bin Kaldi fbank of a fixed number of 10 ms frames (``max_length``: 1024, 10.24 s); its
feature extractor pads or cuts to that length and normalises with AudioSet's mean/std, and its
patch grid has no position for longer inputs, so the window stays the checkpoint's. It pools as
it was trained: the mean of its [CLS] and distillation tokens (``pooling="cls"``;
``"mean_all"`` averages every token). Every checkpoint states the rate its feature extractor
expects (16 kHz for all of these); the data layer resamples each clip to it and ``fit`` says so.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.backbones._base import AUDIO, Backbone, PretrainedCfg, block_layer_groups

AST = "audio-spectrogram-transformer"
AUDIO_MODEL_TYPES = ("whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat", AST)
POOLINGS = ("mean", "mean_all", "cls")


def audio_pooling(model_type: str, pooling: str) -> str:
    """The pooling a checkpoint supports: AST pools its [CLS]/distillation tokens ("mean" -> "cls"),
    the frame encoders average frames ("cls" -> "mean")."""
    if model_type == AST:
        return "cls" if pooling == "mean" else pooling
    return "mean" if pooling == "cls" else pooling


def _window_seconds(model_type: str, feature_extractor: Any) -> float:
    """The longest clip the encoder reads: AST's ``max_length`` 10 ms frames, Whisper's chunk."""
    if model_type == AST:
        return float(feature_extractor.max_length) / 100.0
    return float(getattr(feature_extractor, "chunk_length", None) or 30)


class HFAudioBackbone(Backbone):
    def __init__(self, model: nn.Module, feature_extractor: Any, spec: str, pooling: str = "mean",
                 license: str = "see model card") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"audio pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model = model  # the encoder alone: (N, ...) -> last_hidden_state (N, F, D)
        self.feature_extractor = feature_extractor
        self.spec = spec
        kind = model.config.model_type
        self.whisper, self.ast = kind == "whisper", kind == AST
        if (pooling == "cls") != self.ast:
            raise ValueError(f"{spec}: pooling {pooling!r} does not apply to a {kind} encoder "
                             f"(use {audio_pooling(kind, pooling)!r})")
        self.pretrained_cfg = PretrainedCfg(
            modality=AUDIO, source=spec, license=license, pooling=pooling,
            sampling_rate=int(feature_extractor.sampling_rate), max_seconds=_window_seconds(kind, feature_extractor))
        self.num_features = int(getattr(model.config, "d_model", None) or model.config.hidden_size)

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        """Adopt a saved or data-fitted configuration; for Whisper, ``max_seconds`` is the window
        the encoder reads (see ``set_window``)."""
        if self.whisper:
            self.set_window(cfg.max_seconds)
        self.pretrained_cfg = cfg

    def set_window(self, seconds: float) -> None:
        """Let Whisper's encoder read ``seconds`` (whole seconds, at most its 30) instead of 30 s:
        the log-mel is padded to the window and the encoder keeps the first position embeddings.
        Keyword-length clips padded to 30 s spend 15-30x the compute on padding."""
        fe = self.feature_extractor
        seconds = int(math.ceil(seconds))
        frames = seconds * int(fe.sampling_rate) // int(fe.hop_length) // 2  # the conv2 stride halves
        have = self.model.embed_positions.num_embeddings
        if frames == have:
            return
        if frames > have or frames < 1:
            raise ValueError(f"{self.spec}: a {seconds} s window needs {frames} encoder positions; the model has {have}")
        emb = nn.Embedding(frames, self.model.embed_positions.embedding_dim)
        emb.weight.data.copy_(self.model.embed_positions.weight.data[:frames])
        self.model.embed_positions = emb.requires_grad_(False).to(self.model.embed_positions.weight.device)
        self.model.config.max_source_positions = self.model.max_source_positions = frames
        self.feature_extractor = type(fe)(feature_size=fe.feature_size, sampling_rate=fe.sampling_rate,
                                          hop_length=fe.hop_length, chunk_length=seconds, n_fft=fe.n_fft)

    def _inputs(self, wave: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        clips = [w[:n].float().cpu().numpy() for w, n in zip(wave, lengths.tolist())]
        sr = self.pretrained_cfg.sampling_rate
        if self.whisper:  # (N, 80, 3000) log-mel, computed with torch on the batch's device
            feats = self.feature_extractor(clips, sampling_rate=sr, return_tensors="pt",
                                           device=str(wave.device)).input_features
            return {"input_features": feats.to(wave.device)}
        if self.ast:  # (N, max_length, 128) normalised fbank, padded or cut to the checkpoint's length
            feats = self.feature_extractor(clips, sampling_rate=sr, return_tensors="pt").input_values
            return {"input_values": feats.to(wave.device)}
        enc = self.feature_extractor(clips, sampling_rate=sr, padding=True, return_tensors="pt",
                                     return_attention_mask=True)
        out = {"input_values": enc.input_values.to(wave.device)}  # (N, T)
        if getattr(self.feature_extractor, "return_attention_mask", False):
            out["attention_mask"] = enc.attention_mask.to(wave.device)
        return out

    def frames(self, lengths: torch.Tensor, total: int) -> torch.Tensor:
        """How many of the ``total`` output frames each clip covers (N,)."""
        if self.whisper:  # hop 160 samples per mel frame, then the stride-2 convolution
            hop = int(getattr(self.feature_extractor, "hop_length", 160))
            n = torch.div(lengths + 2 * hop - 1, 2 * hop, rounding_mode="floor")
        else:
            n = self.model._get_feat_extract_output_lengths(lengths)
        return n.clamp(1, total)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, D)
        wave, lengths = batch["waveform"], batch["lengths"]  # (N, T), (N,)
        out = self.model(**self._inputs(wave, lengths))
        if self.pretrained_cfg.pooling == "cls":  # AST: ([CLS] + [DIST]) / 2
            return out.pooler_output
        hidden = out.last_hidden_state  # (N, F, D)
        if self.pretrained_cfg.pooling == "mean_all":
            return hidden.mean(1)
        keep = torch.arange(hidden.shape[1], device=hidden.device)[None] < self.frames(
            lengths.to(hidden.device), hidden.shape[1])[:, None]  # (N, F)
        m = keep.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        # convolutional front end (+ positions) | each transformer block | final norm
        return block_layer_groups(self.model)

    def save_architecture(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(directory)
        self.feature_extractor.save_pretrained(directory)
        self.write_config(directory, "hf", ".", pooling=self.pretrained_cfg.pooling)


def encoder_from_config(config: Any, name_or_path: str | Path | None, pretrained: bool) -> nn.Module:
    """The encoder of an audio checkpoint (Whisper: without its decoder), with or without weights."""
    from transformers import AutoModel

    if config.model_type == "whisper":
        from transformers import WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        if pretrained:
            return WhisperModel.from_pretrained(str(name_or_path)).get_encoder()
        return WhisperEncoder(config)
    if pretrained:
        return AutoModel.from_pretrained(str(name_or_path))
    return AutoModel.from_config(config)


def from_pretrained_dir(name_or_path: str | Path, config: Any, pretrained: bool = True, spec: str | None = None,
                        pooling: str = "mean", license: str = "see model card") -> HFAudioBackbone:
    """An ``hf:`` audio checkpoint (hub id or directory) with its feature extractor."""
    from transformers import AutoFeatureExtractor

    fe = AutoFeatureExtractor.from_pretrained(str(name_or_path))
    model = encoder_from_config(config, name_or_path, pretrained)
    return HFAudioBackbone(model, fe, spec or f"hf:{name_or_path}", pooling=audio_pooling(config.model_type, pooling),
                           license=license)


def whisper_from_ct2_dir(directory: str | Path, pretrained: bool = True, spec: str = "whisper_tiny_en",
                         license: str = "mit") -> HFAudioBackbone:
    """Whisper's encoder from a CTranslate2 ``model.bin`` (see ``headstart.backbones.whisper``)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from headstart.backbones.ctranslate2 import read_ct2
    from headstart.backbones.whisper import whisper_config_kwargs, whisper_encoder_state_dict

    ct2 = read_ct2(directory)
    config = WhisperConfig(**whisper_config_kwargs(ct2))
    encoder = WhisperEncoder(config)
    if pretrained:
        encoder.load_state_dict(whisper_encoder_state_dict(ct2), strict=True)
    fe = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    return HFAudioBackbone(encoder.eval(), fe, spec, license=license)
