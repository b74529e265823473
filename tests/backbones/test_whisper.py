import pytest
import torch

from headstart.backbones.ctranslate2 import parse_ct2, serialize_ct2
from headstart.backbones.whisper import whisper_config_kwargs, whisper_from_ct2, whisper_state_dict
from headstart.testing.audio import tiny_whisper_config, whisper_to_ct2


@pytest.fixture(scope="module")
def tiny():
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    return WhisperForConditionalGeneration(tiny_whisper_config()).eval()


def test_the_mapping_restores_every_tensor_of_the_checkpoint(tiny):
    ct2 = parse_ct2(serialize_ct2(whisper_to_ct2(tiny, torch.float32)))
    mapped = whisper_state_dict(ct2)
    original = tiny.state_dict()
    assert set(mapped) == set(original)
    for k, v in original.items():
        assert torch.equal(mapped[k], v), k


def test_the_config_is_read_off_the_tensors(tiny):
    kw = whisper_config_kwargs(whisper_to_ct2(tiny))
    cfg = tiny.config
    assert (kw["d_model"], kw["encoder_layers"], kw["decoder_layers"], kw["encoder_attention_heads"],
            kw["encoder_ffn_dim"], kw["num_mel_bins"], kw["vocab_size"]) == (
        cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.encoder_attention_heads, cfg.encoder_ffn_dim,
        cfg.num_mel_bins, cfg.vocab_size)


def test_the_rebuilt_model_computes_what_the_original_does_with_proj_out_tied(tiny):
    rebuilt = whisper_from_ct2(whisper_to_ct2(tiny, torch.float32))
    assert rebuilt.proj_out.weight.data_ptr() == rebuilt.model.decoder.embed_tokens.weight.data_ptr()
    x, ids = torch.randn(1, 80, 3000), torch.tensor([[3, 5, 7]])
    with torch.no_grad():
        assert torch.allclose(rebuilt(input_features=x, decoder_input_ids=ids).logits,
                              tiny(input_features=x, decoder_input_ids=ids).logits, atol=1e-5)


def test_a_nonzero_key_bias_is_refused(tiny):
    ct2 = whisper_to_ct2(tiny, torch.float32)
    b = ct2.variables["encoder/layer_0/self_attention/linear_0/bias"]
    b[16:32] = 1.0  # the key third
    with pytest.raises(ValueError, match="key projection's bias is not zero"):
        whisper_state_dict(ct2)


def test_another_spec_is_refused(tiny):
    ct2 = whisper_to_ct2(tiny)
    ct2.spec = "TransformerSpec"
    with pytest.raises(ValueError, match="not a Whisper model"):
        whisper_state_dict(ct2)
