"""``hf:<hub id or directory>`` — a transformers AutoModel encoder with mean (or CLS) pooling;
``mean_last_half`` averages the hidden states of the last half of the layers before the mean over
tokens (the middle layers of a sentence encoder carry more of what a few-shot probe needs than its
last layer alone: ``headstart.recipes.FEW_LABEL_TEXT_POOLING``);
audio checkpoints go to ``headstart.backbones.audio``, CLIP / SigLIP dual encoders to
``headstart.backbones.clip``, PatchTST / PatchTSMixer to ``headstart.backbones.hf_timeseries``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.backbones._base import TEXT, Backbone, PretrainedCfg, block_layer_groups
from headstart.backbones.audio import AUDIO_MODEL_TYPES, from_pretrained_dir
from headstart.backbones.clip import DUAL_MODEL_TYPES, hf_dual_encoder
from headstart.backbones.hf_timeseries import TS_MODEL_TYPES, hf_series_encoder


POOLINGS = ("mean", "cls", "mean_last_half")


class HFBackbone(Backbone):
    def __init__(self, model: nn.Module, tokenizer: Any, spec: str, max_length: int = 128,
                 pooling: str = "mean", license: str = "see model card") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # mean/CLS pooling is ours; an unused pooler only wastes memory
        self.model = model
        self._tok = tokenizer
        if self._tok.pad_token is None:  # GPT-2 style tokenizers have no pad token
            self._tok.pad_token = self._tok.eos_token
        self.spec = spec
        limit = getattr(tokenizer, "model_max_length", max_length) or max_length
        self.pretrained_cfg = PretrainedCfg(
            modality=TEXT, source=spec, license=license,
            max_length=int(min(max_length, limit)), pooling=pooling)
        self.num_features = int(model.config.hidden_size)

    def tokenizer(self) -> Any:
        return self._tok

    def set_pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {cfg.pooling!r}")
        self.pretrained_cfg = cfg

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, D)
        mask = batch["attention_mask"]  # (N, T)
        pooling = self.pretrained_cfg.pooling
        out = self.model(input_ids=batch["input_ids"], attention_mask=mask,
                         output_hidden_states=pooling == "mean_last_half")
        hidden = out.last_hidden_state  # (N, T, D)
        if pooling == "mean_last_half":  # hidden_states: the embeddings, then each of the L layers
            layers = out.hidden_states[1:]
            hidden = torch.stack(layers[len(layers) - len(layers) // 2:]).mean(0)  # layers L/2+1 .. L
        if pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        # embeddings | each transformer block | whatever follows (final norm, pooler)
        return block_layer_groups(self.model)

    def save_architecture(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(directory)
        self._tok.save_pretrained(directory)
        self.write_config(directory, "hf", ".", pooling=self.pretrained_cfg.pooling)


def from_name(name_or_path: str | Path, pretrained: bool = True, spec: str | None = None,
              pooling: str = "mean", max_length: int = 128,
              license: str = "see model card") -> Backbone:
    """Load weights (pretrained) or only the architecture (random init) plus the tokenizer, or,
    for an audio checkpoint (Whisper, wav2vec2, HuBERT ...), its feature extractor; a CLIP or
    SigLIP checkpoint is an image backbone with a text tower (``clip.HFDualEncoder``); a PatchTST
    or PatchTSMixer checkpoint is a time-series encoder (``hf_timeseries.HFSeriesBackbone``)."""
    from transformers import (  # a second or so: only when used
        AutoConfig,
        AutoModel,
        AutoTokenizer,
    )

    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(str(name_or_path))
    # transformers draws a "Loading weights" bar over the checkpoint's tensors on every load, even
    # for a local 90 MB file: noise in every fit's log. Downloads keep huggingface_hub's own bar.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        if config.model_type in AUDIO_MODEL_TYPES:
            return from_pretrained_dir(name_or_path, config, pretrained=pretrained, spec=spec,
                                       pooling=pooling, license=license)
        if config.model_type in DUAL_MODEL_TYPES:
            return hf_dual_encoder(name_or_path, config, pretrained=pretrained, spec=spec, license=license)
        if config.model_type in TS_MODEL_TYPES:
            return hf_series_encoder(name_or_path, config, pretrained=pretrained, spec=spec, license=license)
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
        model = AutoModel.from_pretrained(str(name_or_path)) if pretrained else AutoModel.from_config(config)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return HFBackbone(model, tok, spec=spec or f"hf:{name_or_path}", max_length=max_length,
                      pooling=pooling, license=license)


def build(name: str, pretrained: bool = True) -> Backbone:
    return from_name(name, pretrained=pretrained)
