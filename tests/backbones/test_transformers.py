import pytest
import torch

from headstart.backbones.tiny import tiny_tokenizer
from headstart.backbones.transformers import HFBackbone


def _four_layer_bert(pooling: str) -> HFBackbone:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tiny_tokenizer()), hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    return HFBackbone(BertModel(cfg, add_pooling_layer=False).eval(), tiny_tokenizer(), spec="test:bert4",
                      pooling=pooling)


def test_mean_last_half_averages_the_last_half_of_the_layers_then_the_tokens():
    bb = _four_layer_bert("mean_last_half")
    batch = dict(bb.tokenizer()(["a short one", "a much longer text here"], padding=True, return_tensors="pt"))
    with torch.no_grad():
        got = bb.forward_features(batch)
        hs = bb.model(**batch, output_hidden_states=True).hidden_states  # embeddings + 4 layers
    m = batch["attention_mask"].unsqueeze(-1).float()
    layers = (hs[3] + hs[4]) / 2  # layers 3 and 4 of 4
    assert torch.allclose(got, (layers * m).sum(1) / m.sum(1), atol=1e-6)


def test_an_unknown_pooling_is_refused():
    bb = _four_layer_bert("mean")
    with pytest.raises(ValueError, match="pooling"):
        from dataclasses import replace

        bb.set_pretrained_cfg(replace(bb.pretrained_cfg, pooling="max"))
