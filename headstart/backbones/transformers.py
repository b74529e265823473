"""``hf:<hub id or directory>`` — a transformers AutoModel encoder with mean (or CLS) pooling."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.backbones._base import TEXT, Backbone, PretrainedCfg


class HFBackbone(Backbone):
    def __init__(self, model: nn.Module, tokenizer: Any, spec: str, max_length: int = 128,
                 pooling: str = "mean", license: str = "see model card") -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
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

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, D)
        mask = batch["attention_mask"]  # (N, T)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        if self.pretrained_cfg.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        # embeddings | each transformer block | whatever follows (final norm, pooler)
        blocks = max((m for m in self.model.modules() if isinstance(m, nn.ModuleList)),
                     key=len, default=None)
        if blocks is None or len(blocks) < 2:
            return [list(self.model.parameters())]
        in_block = {id(p) for p in blocks.parameters()}
        first_block = next(iter(blocks[0].parameters()))
        before, after, seen_first = [], [], False
        for p in self.model.parameters():
            if p is first_block:
                seen_first = True
            if id(p) not in in_block:
                (after if seen_first else before).append(p)
        groups = [before] + [list(b.parameters()) for b in blocks] + [after]
        return [g for g in groups if g]

    def save_architecture(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(directory)
        self._tok.save_pretrained(directory)
        self.write_config(directory, "hf", ".", pooling=self.pretrained_cfg.pooling)


def from_name(name_or_path: str | Path, pretrained: bool = True, spec: str | None = None,
              pooling: str = "mean", max_length: int = 128,
              license: str = "see model card") -> HFBackbone:
    """Load weights (pretrained) or only the architecture (random init) plus the tokenizer."""
    from transformers import (  # a second or so: only when used
        AutoConfig,
        AutoModel,
        AutoTokenizer,
    )

    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(str(name_or_path))
    # transformers draws a "Loading weights" bar over the checkpoint's tensors on every load, even
    # for a local 90 MB file: noise in every fit's log. Downloads keep huggingface_hub's own bar.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        if pretrained:
            model = AutoModel.from_pretrained(str(name_or_path))
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(str(name_or_path)))
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return HFBackbone(model, tok, spec=spec or f"hf:{name_or_path}", max_length=max_length,
                      pooling=pooling, license=license)


def build(name: str, pretrained: bool = True) -> HFBackbone:
    return from_name(name, pretrained=pretrained)
