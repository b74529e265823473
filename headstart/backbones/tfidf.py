"""``tfidf:1-2`` — the classic text baseline as a backbone: word n-gram TF-IDF (here 1- and
2-grams; sublinear tf, L2-normalised rows), the vocabulary and idf learned from the training texts.

Nothing is pretrained: it is the from-scratch rung for text (the planner's, like the small CNN for
images), and it bundles like any backbone (vocabulary in ``backbone.json``, idf in the weights).
scikit-learn's ``TfidfVectorizer`` learns the vocabulary and idf and splits texts into n-grams;
the forward pass turns n-gram ids into the same vectors (tested equal to ``transform``), so the
loaders, feature cache and heads treat it as any text encoder.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from headstart.backbones._base import TEXT, Backbone, PretrainedCfg

MAX_FEATURES = 20000  # the most frequent n-grams kept: bounds the feature width (and the cache)
MAX_NGRAMS = 4096  # n-grams read per text (a text encoder truncates at its token limit too)


def _vectorizer(ngram_range: tuple[int, int]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True, max_features=MAX_FEATURES)


class NgramTokenizer:
    """Texts -> ids of their known n-grams (1-based; repeats count occurrences; 0 pads). Called
    like a transformers tokenizer, so ``TokenizedTexts`` batches it."""

    pad_token_id = 0
    padding_side = "right"
    model_max_length = MAX_NGRAMS

    def __init__(self, vocabulary: Sequence[str], ngram_range: tuple[int, int]) -> None:
        self.index = {t: i + 1 for i, t in enumerate(vocabulary)}
        self._analyze = _vectorizer(ngram_range).build_analyzer()

    def __call__(self, texts: Sequence[str], truncation: bool = True, max_length: int | None = None,
                 padding: bool = False, return_tensors: str | None = None, **_: Any) -> dict[str, Any]:
        ids = []
        for text in texts:
            row = [self.index[g] for g in self._analyze(text) if g in self.index]
            if truncation and max_length:
                row = row[:max_length]
            ids.append(row or [0])  # no known n-gram: one padding id, masked out below
        if padding or return_tensors == "pt":
            width = max(len(r) for r in ids)
            ids = [r + [0] * (width - len(r)) for r in ids]
        enc = {"input_ids": ids, "attention_mask": [[int(i != 0) for i in row] for row in ids]}
        return {k: torch.tensor(v, dtype=torch.long) for k, v in enc.items()} if return_tensors == "pt" else enc


class TfidfBackbone(Backbone):
    standardize_features = False  # idf weighting is the point: per-column scaling would undo it

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), vocabulary: Sequence[str] = (),
                 spec: str | None = None) -> None:
        super().__init__()
        lo, hi = ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"n-gram range must be 1 <= low <= high, got {ngram_range}")
        self.ngram_range = (int(lo), int(hi))
        self.spec = spec or f"tfidf:{lo}-{hi}"
        self.pretrained_cfg = PretrainedCfg(modality=TEXT, source=self.spec,
                                            license="none (learned from your training texts)",
                                            max_length=MAX_NGRAMS, pooling="tfidf")
        self._set_vocabulary(list(vocabulary), torch.ones(len(vocabulary)))

    def _set_vocabulary(self, vocabulary: list[str], idf: torch.Tensor) -> None:
        self.vocabulary = vocabulary
        self.register_buffer("idf", idf.float())
        self.num_features = len(vocabulary)
        self._tok = NgramTokenizer(vocabulary, self.ngram_range)

    @property
    def fitted(self) -> bool:
        return self.num_features > 0

    def adapt_to(self, texts: Sequence[str]) -> None:
        """Learn the vocabulary and idf from the training texts (once: a loaded backbone keeps its own)."""
        if self.fitted:
            return
        vec = _vectorizer(self.ngram_range)
        try:
            vec.fit(list(texts))
        except ValueError as e:  # e.g. every text empty or made of stop characters
            raise ValueError(f"{self.spec}: cannot build a vocabulary from the training texts ({e})") from None
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
        self._set_vocabulary(vocab, torch.as_tensor(vec.idf_))

    def tokenizer(self) -> NgramTokenizer:
        return self._tok

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # -> (N, V)
        if not self.fitted:
            raise RuntimeError(f"{self.spec}: no vocabulary yet (it is learned from the training texts)")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        counts = torch.zeros(ids.shape[0], self.num_features + 1, dtype=self.idf.dtype, device=ids.device)
        counts.scatter_add_(1, ids, mask.to(counts.dtype))
        counts = counts[:, 1:]
        tf = torch.where(counts > 0, 1 + torch.log(counts.clamp(min=1)), torch.zeros_like(counts))
        x = tf * self.idf
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return []  # nothing to fine-tune: the idf is fixed once learned

    def identity(self) -> str:
        """The vocabulary is part of what the features mean (the cache key must see it)."""
        h = hashlib.sha256(super().identity().encode())
        h.update("\n".join(self.vocabulary).encode())
        return h.hexdigest()[:32]

    def save_architecture(self, directory: Path) -> None:
        self.write_config(directory, "tfidf", f"{self.ngram_range[0]}-{self.ngram_range[1]}",
                          vocabulary=self.vocabulary)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "TfidfBackbone":
        """Rebuild from ``backbone.json`` (the idf comes with the weights)."""
        return cls(parse_range(cfg["arch"]), cfg.get("vocabulary", []), spec=cfg.get("spec"))


def parse_range(name: str) -> tuple[int, int]:
    try:
        lo, hi = (name or "1-2").split("-")
        return int(lo), int(hi)
    except ValueError:
        raise ValueError(f"tfidf:{name}: expected an n-gram range like tfidf:1-2") from None


def build(name: str, pretrained: bool = True) -> TfidfBackbone:
    return TfidfBackbone(parse_range(name))
