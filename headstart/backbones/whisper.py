"""Whisper weights in CTranslate2 format -> ``transformers.WhisperForConditionalGeneration``.

The key mapping is explicit (timm's rule: one tested remap per checkpoint source). CTranslate2's
converter fuses attention projections; this splits them back:

    CTranslate2 (per layer i)                       transformers (``model.`` prefix)
    encoder/conv{1,2}/{weight,bias}                 encoder.conv{1,2}.{weight,bias}
    encoder/position_encodings/encodings            encoder.embed_positions.weight
    {enc,dec}/layer_i/self_attention/linear_0       layers.i.self_attn.{q,k,v}_proj  (rows q|k|v;
                                                    k has no bias: its third must be zero)
    {enc,dec}/layer_i/self_attention/linear_1       layers.i.self_attn.out_proj
    {enc,dec}/layer_i/self_attention/layer_norm     layers.i.self_attn_layer_norm  (gamma/beta ->
                                                    weight/bias, everywhere)
    decoder/layer_i/attention/linear_0              layers.i.encoder_attn.q_proj
    decoder/layer_i/attention/linear_1              layers.i.encoder_attn.{k,v}_proj  (rows k|v)
    decoder/layer_i/attention/linear_2              layers.i.encoder_attn.out_proj
    decoder/layer_i/attention/layer_norm            layers.i.encoder_attn_layer_norm
    {enc,dec}/layer_i/ffn/linear_{0,1}              layers.i.fc{1,2}
    {enc,dec}/layer_i/ffn/layer_norm                layers.i.final_layer_norm
    {enc,dec}/layer_norm                            {encoder,decoder}.layer_norm
    decoder/embeddings/weight                       decoder.embed_tokens.weight  (proj_out tied)
    decoder/position_encodings/encodings            decoder.embed_positions.weight
"""
from __future__ import annotations

import re
from typing import Any

import torch

from headstart.backbones.ctranslate2 import CT2Model

ENGLISH_ONLY_VOCAB = 51864  # the *.en checkpoints: a smaller vocabulary, other special-token ids


def _norm(ct2: CT2Model, src: str, dst: str, out: dict[str, torch.Tensor]) -> None:
    out[f"{dst}.weight"] = ct2.get(f"{src}/gamma")
    out[f"{dst}.bias"] = ct2.get(f"{src}/beta")


def _linear(ct2: CT2Model, src: str, dst: str, out: dict[str, torch.Tensor]) -> None:
    out[f"{dst}.weight"] = ct2.get(f"{src}/weight")
    out[f"{dst}.bias"] = ct2.get(f"{src}/bias")


def _split(ct2: CT2Model, src: str, dsts: list[str], out: dict[str, torch.Tensor]) -> None:
    """A fused projection (rows stacked in ``dsts`` order) into separate ones; ``k_proj`` has no
    bias in Whisper, so its part of the fused bias must be zero (else refuse: wrong layout)."""
    ws = ct2.get(f"{src}/weight").chunk(len(dsts), dim=0)
    bs = ct2.get(f"{src}/bias").chunk(len(dsts), dim=0)
    for dst, w, b in zip(dsts, ws, bs):
        out[f"{dst}.weight"] = w
        if dst.endswith("k_proj"):
            if bool(b.float().abs().max() > 0):
                raise ValueError(f"{src}/bias: the key projection's bias is not zero; not a Whisper layout")
        else:
            out[f"{dst}.bias"] = b


def _layer(ct2: CT2Model, side: str, i: int, out: dict[str, torch.Tensor]) -> None:
    s, d = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
    _split(ct2, f"{s}/self_attention/linear_0", [f"{d}.self_attn.{p}_proj" for p in "qkv"], out)
    _linear(ct2, f"{s}/self_attention/linear_1", f"{d}.self_attn.out_proj", out)
    _norm(ct2, f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm", out)
    if side == "decoder":
        _linear(ct2, f"{s}/attention/linear_0", f"{d}.encoder_attn.q_proj", out)
        _split(ct2, f"{s}/attention/linear_1", [f"{d}.encoder_attn.{p}_proj" for p in "kv"], out)
        _linear(ct2, f"{s}/attention/linear_2", f"{d}.encoder_attn.out_proj", out)
        _norm(ct2, f"{s}/attention/layer_norm", f"{d}.encoder_attn_layer_norm", out)
    _linear(ct2, f"{s}/ffn/linear_0", f"{d}.fc1", out)
    _linear(ct2, f"{s}/ffn/linear_1", f"{d}.fc2", out)
    _norm(ct2, f"{s}/ffn/layer_norm", f"{d}.final_layer_norm", out)


def _num_layers(ct2: CT2Model, side: str) -> int:
    found = {int(m.group(1)) for k in ct2.variables if (m := re.match(rf"{side}/layer_(\d+)/", k))}
    if found != set(range(len(found))):
        raise ValueError(f"{side} layers are not numbered 0..n-1: {sorted(found)}")
    return len(found)


def whisper_state_dict(ct2: CT2Model) -> dict[str, torch.Tensor]:
    """The state dict of ``WhisperForConditionalGeneration`` (float32) from a CTranslate2 Whisper."""
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: the CTranslate2 spec is {ct2.spec!r}")
    out: dict[str, torch.Tensor] = {}
    for n in (1, 2):
        _linear(ct2, f"encoder/conv{n}", f"model.encoder.conv{n}", out)
    out["model.encoder.embed_positions.weight"] = ct2.get("encoder/position_encodings/encodings")
    out["model.decoder.embed_positions.weight"] = ct2.get("decoder/position_encodings/encodings")
    out["model.decoder.embed_tokens.weight"] = ct2.get("decoder/embeddings/weight")
    for side in ("encoder", "decoder"):
        for i in range(_num_layers(ct2, side)):
            _layer(ct2, side, i, out)
        _norm(ct2, f"{side}/layer_norm", f"model.{side}.layer_norm", out)
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]  # tied, as in the checkpoint
    return {k: v.float() for k, v in out.items()}


def whisper_encoder_state_dict(ct2: CT2Model) -> dict[str, torch.Tensor]:
    """The encoder's part of ``whisper_state_dict``, keyed as ``WhisperEncoder`` names it."""
    prefix = "model.encoder."
    return {k[len(prefix):]: v for k, v in whisper_state_dict(ct2).items() if k.startswith(prefix)}


def whisper_config_kwargs(ct2: CT2Model) -> dict[str, Any]:
    """``WhisperConfig`` arguments read off the tensors' shapes (nothing typed twice)."""
    vocab, d_model = ct2.get("decoder/embeddings/weight").shape
    kw: dict[str, Any] = {
        "vocab_size": int(vocab), "d_model": int(d_model),
        "num_mel_bins": int(ct2.get("encoder/conv1/weight").shape[1]),
        "encoder_layers": _num_layers(ct2, "encoder"), "decoder_layers": _num_layers(ct2, "decoder"),
        "encoder_attention_heads": ct2.scalar("encoder/num_heads"),
        "decoder_attention_heads": ct2.scalar("decoder/num_heads"),
        "encoder_ffn_dim": int(ct2.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        "decoder_ffn_dim": int(ct2.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        "max_source_positions": int(ct2.get("encoder/position_encodings/encodings").shape[0]),
        "max_target_positions": int(ct2.get("decoder/position_encodings/encodings").shape[0]),
        "tie_word_embeddings": True,
    }
    if vocab >= ENGLISH_ONLY_VOCAB:  # Whisper's vocabularies: <|endoftext|>, <|startoftranscript|>
        eot = 50256 if vocab == ENGLISH_ONLY_VOCAB else 50257
        kw.update(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=eot + 1)
    else:  # a toy vocabulary (tests): no special tokens to point at
        kw.update(bos_token_id=None, eos_token_id=None, pad_token_id=None, decoder_start_token_id=0)
    return kw


def whisper_from_ct2(ct2: CT2Model) -> Any:
    """A ``WhisperForConditionalGeneration`` carrying the CTranslate2 file's weights (strict load)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration(WhisperConfig(**whisper_config_kwargs(ct2)))
    model.load_state_dict(whisper_state_dict(ct2), strict=True)
    model.eval()
    return model
