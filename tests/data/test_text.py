import torch

from headstart.backbones import build_backbone
from headstart.data.text import TextCollator, TokenizedTexts


def test_tokenized_once_then_padded_equals_tokenizing_each_batch():
    bb = build_backbone("tiny:bert")
    texts = ["a short one", "a somewhat longer text with more words in it", "mid length text"]
    tokens = TokenizedTexts(bb.tokenizer(), texts, 8)
    got = tokens.pad(tokens.rows)
    want = TextCollator(bb.tokenizer(), 8)(texts)
    assert torch.equal(got["input_ids"], want["input_ids"])
    assert torch.equal(got["attention_mask"], want["attention_mask"])
