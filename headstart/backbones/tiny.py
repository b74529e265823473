"""``tiny:cnn``, ``tiny:small_cnn`` and ``tiny:bert`` — small randomly initialised backbones.

They satisfy the full Backbone contract and build in milliseconds with no download: the unit
tests and smoke runs use them. ``tiny:small_cnn`` (widths 32/64/128, 32x32 inputs) is the
planner's from-scratch rung for images: on small low-resolution images far from ImageNet it can
beat every transfer recipe.
"""
from __future__ import annotations

import string
from pathlib import Path

import torch
from torch import nn

from headstart.backbones._base import IMAGE, Backbone, PretrainedCfg


class TinyCNN(Backbone):
    """Three conv blocks and global average pooling; 32x32 inputs by default."""

    def __init__(self, width: int = 16, spec: str = "tiny:cnn", arch: str = "cnn") -> None:
        super().__init__()
        self.spec = spec
        self.arch = arch

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.blocks = nn.ModuleList([block(3, width), block(width, 2 * width), block(2 * width, 4 * width)])
        self.pretrained_cfg = PretrainedCfg(modality=IMAGE, source=spec, license="none (random)",
                                            input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        self.num_features = 4 * width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, 4w)
        for b in self.blocks:
            x = b(x)
        return x.mean(dim=(2, 3))

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(b.parameters()) for b in self.blocks]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "tiny", self.arch)


def tiny_tokenizer():
    """A character-level WordPiece tokenizer built in memory (no files, no download)."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {t: i for i, t in enumerate(specials + chars + ["##" + c for c in chars])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=64)


def tiny_bert(spec: str = "tiny:bert"):
    from transformers import BertConfig, BertModel

    from headstart.backbones.transformers import HFBackbone

    tok = tiny_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    return HFBackbone(BertModel(cfg, add_pooling_layer=False), tok, spec=spec, max_length=64,
                      license="none (random)")


def build(name: str, pretrained: bool = True) -> Backbone:
    """``pretrained`` is ignored: tiny backbones are always random."""
    if name == "cnn":
        return TinyCNN()
    if name == "small_cnn":
        return TinyCNN(width=32, spec="tiny:small_cnn", arch="small_cnn")
    if name == "bert":
        return tiny_bert()
    raise KeyError(f"unknown tiny backbone {name!r}; known: cnn, small_cnn, bert")
