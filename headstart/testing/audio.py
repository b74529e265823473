"""Audio made on the spot for tests and benchmarks (no audio file is ever committed): class
folders of synthetic tones, a tiny random Whisper checkpoint, and spoken keywords synthesised
with espeak-ng (Debian ``espeak-ng``) in many voices, with noise."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# espeak-ng's own (non-MBROLA) English voices: the accents a voice is built on
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
# voice variants (timbre, gender, age, formant settings) shipped with espeak-ng
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "croak", "klatt",
            "klatt2", "klatt3", "Andy", "Annie", "Alex", "Alicia", "Andrea", "antonio", "AnxiousAndy", "Denis",
            "ed", "Gene", "Jacky", "Lee", "linda", "max", "Michael", "paul", "rob", "steph", "Storm", "Tweaky",
            "grandma", "grandpa", "norbert", "quincy", "shelby", "travis", "victor", "edward", "boris", "david",
            "iven", "john", "belinda")


def write_wav(path: Path, wave: np.ndarray, rate: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, rate)
    return path


def tone_folder(root: Path, n_per_class: int = 4, rate: int = 8000, seconds: float = 0.5,
                classes: dict[str, float] | None = None, seed: int = 0) -> Path:
    """``root/<class>/<i>.wav``: a sine per class (its frequency) with jittered pitch and noise;
    8 kHz by default, so readers must resample."""
    rng = np.random.default_rng(seed)
    classes = classes or {"low": 300.0, "high": 1800.0}
    t = np.arange(int(rate * seconds)) / rate
    for name, freq in classes.items():
        for i in range(n_per_class):
            f = freq * rng.uniform(0.95, 1.05)
            wave = 0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(len(t))
            write_wav(root / name / f"{i}.wav", wave.astype(np.float32), rate)
    return root


def tiny_whisper_dir(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised two-layer Whisper (d_model 16, 80 mels) reading 1 s windows (50
    encoder frames, where the real ones read 30 s) with its feature extractor: an ``hf:``
    checkpoint directory that loads and runs in a fraction of a second."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(seed)
    WhisperModel(tiny_whisper_config(max_source_positions=50)).save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(directory)
    return directory


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(word: str, path: Path, voice: str, speed: int = 160, pitch: int = 50) -> Path:
    """One espeak-ng utterance (22.05 kHz mono WAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                   check=True, capture_output=True, timeout=30)
    return path


def add_noise(path: Path, snr_db: float, lead_seconds: float, rng: np.random.Generator) -> None:
    """Rewrite a clip with ``lead_seconds`` of silence before it and white noise at ``snr_db``."""
    import soundfile as sf

    wave, rate = sf.read(str(path), dtype="float32")
    wave = np.concatenate([np.zeros(int(lead_seconds * rate), np.float32), wave])
    power = float(np.mean(wave ** 2)) or 1e-8
    wave = wave + rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    sf.write(str(path), np.clip(wave, -1, 1), rate)


def keyword_set(root: Path, voices: list[str], words: tuple[str, ...] = KEYWORDS, takes: int = 1,
                snr_db: tuple[float, float] = (10.0, 30.0), seed: int = 0) -> Path:
    """``root/<word>/<voice>_<take>.wav`` for every word, voice and take: speed 130-190 wpm and
    pitch 30-70 drawn per clip, 0-0.3 s of leading silence, white noise at an SNR drawn in
    ``snr_db`` (seeded)."""
    rng = np.random.default_rng(seed)
    for word in words:
        for voice in voices:
            for k in range(takes):
                p = speak(word, root / word / f"{voice.replace('+', '_')}_{k}.wav", voice,
                          speed=int(rng.integers(130, 191)), pitch=int(rng.integers(30, 71)))
                add_noise(p, float(rng.uniform(*snr_db)), float(rng.uniform(0, 0.3)), rng)
    return root


def voices(n: int, offset: int = 0) -> list[str]:
    """``n`` distinct voices (accent + variant), the variants ``offset .. offset + n - 1``: two
    calls with disjoint ranges share no variant (speaker-disjoint splits)."""
    if offset + n > len(VARIANTS):
        raise ValueError(f"only {len(VARIANTS)} voice variants")
    return [f"{ACCENTS[(offset + i) % len(ACCENTS)]}+{VARIANTS[offset + i]}" for i in range(n)]


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="headstart-audio-"))


def whisper_to_ct2(model: Any, dtype: Any = None) -> Any:
    """A ``WhisperForConditionalGeneration`` as CTranslate2's converter lays it out (fused q|k|v
    with a zero key bias, gamma/beta norms, scalars, the projection as an alias): the fixture the
    reader and the key mapping are tested against."""
    import torch

    from headstart.backbones.ctranslate2 import CT2Model

    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = model.config
    dt = dtype or torch.float16
    v: dict[str, torch.Tensor] = {}

    def lin(dst: str, src: str, bias: bool = True) -> None:
        v[f"{dst}/weight"] = sd[f"{src}.weight"].to(dt)
        if bias:
            v[f"{dst}/bias"] = sd[f"{src}.bias"].to(dt)

    def norm(dst: str, src: str) -> None:
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"].to(dt), sd[f"{src}.bias"].to(dt)

    def fused(dst: str, srcs: list[str]) -> None:
        v[f"{dst}/weight"] = torch.cat([sd[f"{s}.weight"] for s in srcs]).to(dt)
        v[f"{dst}/bias"] = torch.cat([sd.get(f"{s}.bias", torch.zeros(sd[f"{s}.weight"].shape[0]))
                                      for s in srcs]).to(dt)

    for side, n in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        m = f"model.{side}"
        v[f"{side}/num_heads"] = torch.tensor(getattr(cfg, f"{side}_attention_heads"), dtype=torch.int16)
        v[f"{side}/position_encodings/encodings"] = sd[f"{m}.embed_positions.weight"].to(dt)
        for i in range(n):
            s, d = f"{m}.layers.{i}", f"{side}/layer_{i}"
            fused(f"{d}/self_attention/linear_0", [f"{s}.self_attn.{p}_proj" for p in "qkv"])
            lin(f"{d}/self_attention/linear_1", f"{s}.self_attn.out_proj")
            norm(f"{d}/self_attention/layer_norm", f"{s}.self_attn_layer_norm")
            if side == "decoder":
                lin(f"{d}/attention/linear_0", f"{s}.encoder_attn.q_proj")
                fused(f"{d}/attention/linear_1", [f"{s}.encoder_attn.{p}_proj" for p in "kv"])
                lin(f"{d}/attention/linear_2", f"{s}.encoder_attn.out_proj")
                norm(f"{d}/attention/layer_norm", f"{s}.encoder_attn_layer_norm")
            lin(f"{d}/ffn/linear_0", f"{s}.fc1")
            lin(f"{d}/ffn/linear_1", f"{s}.fc2")
            norm(f"{d}/ffn/layer_norm", f"{s}.final_layer_norm")
        norm(f"{side}/layer_norm", f"{m}.layer_norm")
    for c in (1, 2):
        lin(f"encoder/conv{c}", f"model.encoder.conv{c}")
    v["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"].to(dt)
    return CT2Model("WhisperSpec", 3, 6, v, {"decoder/projection/weight": "decoder/embeddings/weight"})


def tiny_ast_dir(directory: Path, seed: int = 0, seconds: float = 1.0) -> Path:
    """A randomly initialised two-layer Audio Spectrogram Transformer (hidden 16, 128 mel bins,
    ``seconds`` of 10 ms frames where the AudioSet checkpoints read 10.24 s) with its feature
    extractor at 16 kHz: an ``hf:``/``local:`` directory shaped like MIT/ast-finetuned-audioset."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(seed)
    frames = int(round(seconds * 100))
    ASTModel(ASTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                       max_length=frames, num_mel_bins=128)).save_pretrained(directory)
    ASTFeatureExtractor(max_length=frames).save_pretrained(directory)
    return directory


def tiny_hubert_dir(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised two-layer HuBERT (hidden 16, layer-norm front end as in hubert-large:
    padding a clip in a batch leaves its features alone) with a 16 kHz feature extractor."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(seed)
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=4,
                             num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                             do_stable_layer_norm=True)).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(directory)
    return directory


def tiny_whisper_config(**overrides: Any) -> Any:
    """The two-layer Whisper configuration the tests use (d_model 16, 80 mels, 30 s input)."""
    from transformers import WhisperConfig

    kw = dict(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
              decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
              max_source_positions=1500, max_target_positions=32, pad_token_id=0, bos_token_id=1,
              eos_token_id=2, decoder_start_token_id=3)
    return WhisperConfig(**{**kw, **overrides})
