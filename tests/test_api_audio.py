import numpy as np
import torch

from headstart import Headstart, load


def test_a_saved_audio_model_reloads_and_reproduces_its_probabilities(tmp_path, audio_tones):
    train, test, whisper = audio_tones
    est = Headstart(backbone=f"hf:{whisper}", verbose=False, runtime={"cache_dir": str(tmp_path / "c")})
    est.fit(str(train), test=str(test))
    est.save(tmp_path / "b")
    again = load(tmp_path / "b")
    assert again.modality_ == "audio"
    assert np.allclose(again.predict_proba(str(test)), est.predict_proba(str(test)), atol=1e-5)


def test_the_audio_feature_cache_serves_a_second_fit(tmp_path, audio_tones):
    train, test, whisper = audio_tones
    kw = dict(backbone=f"hf:{whisper}", verbose=False, runtime={"cache_dir": str(tmp_path / "c")})
    Headstart(**kw).fit(str(train), test=str(test))
    again = Headstart(**kw).fit(str(train), test=str(test))
    # 10 training + 4 test clips, and the 10 training clips again for the bundle's input-check reference
    assert again.cache_.computed == 0 and again.cache_.reused == 24


def test_fine_tuning_trains_the_whisper_encoder_through_the_trainer(tmp_path, audio_tones):
    train, test, whisper = audio_tones
    est = Headstart(backbone=f"hf:{whisper}", strategy="fine_tuning", strategy_params={"steps": 2},
                    verbose=False, runtime={"batch_size": 4, "cache_dir": False})
    from headstart.backbones import build_backbone

    before = build_backbone(f"hf:{whisper}").model.layers[1].fc1.weight.clone()
    est.fit(str(train), test=str(test))
    after = est.model_.backbone.model.layers[1].fc1.weight
    assert est.strategy_.name == "fine_tuning" and not torch.equal(before, after)


def test_an_ast_fit_says_it_resamples_the_8_khz_clips_to_16_khz(tmp_path, audio_tones, capsys):
    from headstart.testing.audio import tiny_ast_dir

    train, test, _ = audio_tones
    ast = tiny_ast_dir(tmp_path / "ast")
    est = Headstart(backbone=f"hf:{ast}", runtime={"cache_dir": False}).fit(str(train), test=str(test))
    assert f"resampling 8 kHz -> 16 kHz for hf:{ast}" in capsys.readouterr().out
    assert est.predict_proba(str(test)).shape == (4, 2)


def test_the_aisfx_architecture_fits_at_44_1_khz_and_says_so(tmp_path, audio_tones, capsys):
    train, test, _ = audio_tones
    est = Headstart(backbone="scratch:aisfx:cnn", runtime={"cache_dir": False}).fit(str(train), test=str(test))
    assert "resampling 8 kHz -> 44.1 kHz for scratch:aisfx:cnn" in capsys.readouterr().out
    assert est.predict_proba(str(test)).shape == (4, 2)


def test_the_logmel_baseline_fits_from_scratch_and_reloads(tmp_path, audio_tones):
    """audio's from-scratch rung: log-mel statistics + the probe, through fit, save and load."""
    train, test, _ = audio_tones
    est = Headstart(backbone="logmel:80", verbose=False, runtime={"cache_dir": str(tmp_path / "c")})
    est.fit(str(train), test=str(test))
    assert est.metrics_["test"]["accuracy"] == 1.0  # 300 Hz against 1800 Hz tones
    est.save(tmp_path / "b")
    assert np.allclose(load(tmp_path / "b").predict_proba(str(test)), est.predict_proba(str(test)), atol=1e-6)
