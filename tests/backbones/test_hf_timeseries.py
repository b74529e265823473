import numpy as np
import pytest
import torch

from headstart import Headstart
from headstart.backbones import build_backbone
from headstart.backbones.prepare import series_note
from headstart.data import read_data
from headstart.testing.checks import check_backbone


def _save(d, model_cls, cfg):
    torch.manual_seed(0)
    model_cls(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def patchtst_dir(tmp_path_factory):
    from transformers import PatchTSTConfig, PatchTSTModel

    cfg = PatchTSTConfig(num_input_channels=2, context_length=32, patch_length=8, patch_stride=8, d_model=16,
                         num_hidden_layers=2, num_attention_heads=2, ffn_dim=32, do_mask_input=True)
    return _save(tmp_path_factory.mktemp("tiny-patchtst"), PatchTSTModel, cfg)


@pytest.fixture(scope="module")
def mixer_dir(tmp_path_factory):
    from transformers import PatchTSMixerConfig, PatchTSMixerModel

    cfg = PatchTSMixerConfig(num_input_channels=2, context_length=32, patch_length=8, patch_stride=8, d_model=12,
                             num_layers=2, mode="mix_channel")
    return _save(tmp_path_factory.mktemp("tiny-patchtsmixer"), PatchTSMixerModel, cfg)


def _batch(x, lengths=None):
    return {"series": x, "lengths": torch.tensor(lengths or [x.shape[-1]] * len(x))}


def test_a_patchtst_checkpoint_is_a_time_series_backbone_that_does_not_mask(patchtst_dir):
    bb = build_backbone(f"hf:{patchtst_dir}").eval()
    assert bb.modality == "timeseries" and bb.num_features == 16 and bb.pretrained_cfg.extra["context_length"] == 32
    x = torch.randn(2, 1, 20)
    torch.testing.assert_close(bb(_batch(x)), bb(_batch(x)))  # no random patch masking at inference


def test_both_encoders_pass_the_conformance_checks(patchtst_dir, mixer_dir):
    for d in (patchtst_dir, mixer_dir):
        bb = build_backbone(f"local:{d}")
        bb.adapt_to([np.zeros((2, 40), np.float32)] if "mixer" in str(d) else [np.zeros(40, np.float32)])
        check_backbone(bb)


def test_a_padded_series_gets_the_features_it_gets_alone(patchtst_dir):
    bb = build_backbone(f"hf:{patchtst_dir}").eval()
    short = torch.randn(1, 1, 13)
    both = torch.cat([torch.cat([short, torch.zeros(1, 1, 27)], -1), torch.randn(1, 1, 40)])
    with torch.no_grad():
        torch.testing.assert_close(bb(_batch(both, [13, 40]))[:1], bb(_batch(short)))


def test_pooling_averages_the_patches_that_hold_real_steps(patchtst_dir):
    bb = build_backbone(f"hf:{patchtst_dir}").eval()
    x = torch.randn(1, 1, 12)  # right-aligned in the 32-step window: the last 2 of 4 patches hold it
    window = torch.zeros(1, 32, 1)
    window[0, 20:, 0] = x[0, 0]
    observed = torch.zeros(1, 32, 1)
    observed[0, 20:] = 1
    with torch.no_grad():
        hidden = bb.model(past_values=window.expand(-1, -1, 2), past_observed_mask=observed.expand(-1, -1, 2)
                          ).last_hidden_state  # (1, 2, 4, 16): both channels the same series
        torch.testing.assert_close(bb(_batch(x)), hidden[0, 0, 2:].mean(0, keepdim=True))


def test_a_channel_independent_checkpoint_reads_any_count_as_the_mean_of_its_channels(patchtst_dir):
    bb = build_backbone(f"hf:{patchtst_dir}").eval()  # 2 input channels, shared embedding
    bb.adapt_to([np.zeros((3, 40), np.float32)])
    x = torch.randn(2, 3, 40)
    with torch.no_grad():
        each = torch.stack([bb(_batch(x[:, i:i + 1])) for i in range(3)]).mean(0)
        torch.testing.assert_close(bb(_batch(x)), each, atol=1e-5, rtol=1e-4)


def test_a_channel_mixing_checkpoint_refuses_other_counts_and_repeats_one(mixer_dir):
    bb = build_backbone(f"hf:{mixer_dir}").eval()
    with pytest.raises(ValueError, match="reads exactly 2; the series have 3"):
        bb.adapt_to([np.zeros((3, 40), np.float32)])
    bb.adapt_to([np.zeros(40, np.float32)])
    one = torch.randn(2, 1, 40)
    torch.testing.assert_close(bb(_batch(one)), bb(_batch(one.repeat(1, 2, 1))))
    assert "repeating the 1 channel to the 2" in bb.fit_note([np.zeros(40, np.float32)])


def test_the_window_fit_is_said_aloud(patchtst_dir):
    bb = build_backbone(f"hf:{patchtst_dir}")
    short = read_data([np.zeros(24), np.ones(20)], [0, 1], modality="timeseries")
    long = read_data([np.zeros(100), np.ones(90)], [0, 1], modality="timeseries")
    assert series_note(short, bb) == "padding series of up to 24 steps to PatchTST's context of 32"
    assert series_note(long, bb).startswith("resampling series of up to 100 steps to PatchTST's context of 32")


def test_fit_and_predict_with_a_patchtst_backbone(patchtst_dir):
    rng = np.random.default_rng(0)
    xs = [np.sin(np.linspace(0, 6, 20 + i % 7)) if i % 2 == 0 else np.linspace(-1, 1, 20 + i % 7)
          for i in range(24)]
    x, y = [s + rng.normal(0, 0.05, len(s)) for s in xs], [i % 2 for i in range(24)]
    est = Headstart(backbone=f"hf:{patchtst_dir}", strategy="feature_extraction", verbose=False,
                    runtime={"cache_dir": False}).fit(read_data(x, y, modality="timeseries"))
    assert est.modality_ == "timeseries" and est.predict_proba(x[:3]).shape == (3, 2)
