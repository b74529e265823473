"""Texts: validation, hashing and batching with the backbone's tokenizer."""
from __future__ import annotations

import hashlib
from typing import Any

import torch


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class TextCollator:
    """list[str] -> tokenizer batch, padded to the longest text, truncated at max_length."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt", return_token_type_ids=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


class TokenizedTexts:
    """Every text tokenized once (truncated, unpadded); batches are padded to their longest by
    ``pad``. Tokenizing per batch per epoch costs the same work again every epoch."""

    def __init__(self, tokenizer: Any, texts: list[str], max_length: int) -> None:
        self.tokenizer = tokenizer
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, return_token_type_ids=False)
        self.rows = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"])]

    def pad(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad to the longest row on the tokenizer's padding side with its pad token."""
        width = max(len(r["input_ids"]) for r in rows)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            span = slice(width - n, width) if left else slice(0, n)
            ids[i, span] = torch.tensor(r["input_ids"], dtype=torch.long)
            mask[i, span] = torch.tensor(r["attention_mask"], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask}
