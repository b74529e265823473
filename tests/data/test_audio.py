import numpy as np
import pytest
import soundfile as sf
import torch

from headstart.data import read_data
from headstart.data.audio import AudioTransform, audio_batch, load_audio, read_audio
from headstart.data.config import PretrainedCfg
from headstart.data.images import BadSampleError
from headstart.data.loaders import make_loader
from headstart.data.validate import check_data
from headstart.testing.audio import tone_folder, write_wav

CFG = PretrainedCfg(modality="audio", sampling_rate=16000, max_seconds=1.0)


def test_stereo_is_mixed_down_and_8_khz_resampled_to_16(tmp_path):
    t = np.arange(8000) / 8000
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros(8000)
    p = write_wav(tmp_path / "s.wav", np.stack([left, right], 1).astype(np.float32), 8000)
    wave, rate = read_audio(p)
    assert rate == 8000 and wave.shape == (8000,) and np.allclose(wave, left / 2, atol=1e-4)
    up = load_audio(p, sampling_rate=16000)
    assert up.shape == (16000,) and up.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / len(up) - 440) < 2  # the tone stays at 440 Hz


def test_a_flac_and_an_ogg_file_decode_without_ffmpeg(tmp_path):
    wave = (0.2 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    for ext in ("flac", "ogg"):
        sf.write(str(tmp_path / f"a.{ext}"), wave, 16000)
        assert load_audio(tmp_path / f"a.{ext}").shape[0] == 4000


@pytest.mark.parametrize("content,reason", [(b"", "cannot read audio"), (b"RIFF\x00\x00garbage", "cannot read audio")])
def test_unreadable_audio_names_the_file(tmp_path, content, reason):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(BadSampleError, match=rf"bad\.wav.*{reason}"):
        read_audio(tmp_path / "bad.wav", str(tmp_path / "bad.wav"))


def test_zero_length_audio_is_refused_by_name(tmp_path):
    p = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(BadSampleError, match=r"empty\.wav: zero-length audio"):
        read_audio(p, str(p))


def test_eval_transform_keeps_the_start_and_train_augments_reproducibly():
    wave = np.linspace(-0.5, 0.5, 40000).astype(np.float32)
    out = AudioTransform(CFG)(wave)
    assert out.shape == (16000,) and torch.equal(out, torch.from_numpy(wave[:16000]))
    torch.manual_seed(3)
    a = AudioTransform(CFG, train=True)(wave)
    torch.manual_seed(3)
    assert torch.equal(a, AudioTransform(CFG, train=True)(wave)) and not torch.equal(a, out)


def test_batches_are_padded_with_each_clips_length():
    b = audio_batch([(torch.ones(3), 0), (torch.ones(5), 1)])
    assert b["inputs"]["waveform"].shape == (2, 5) and b["inputs"]["lengths"].tolist() == [3, 5]
    assert b["inputs"]["waveform"][0, 3:].abs().sum() == 0 and b["targets"].tolist() == [0, 1]


def test_a_folder_of_class_folders_of_wavs_is_audio_data_and_loads(tmp_path):
    data = read_data(tone_folder(tmp_path, n_per_class=2))
    assert data.modality == "audio" and sorted(set(data.labels)) == ["high", "low"]
    batch = next(iter(make_loader(data, np.zeros(len(data)), CFG, train=False, batch_size=4)))
    assert batch["inputs"]["waveform"].shape == (4, 8000)  # 0.5 s at 8 kHz -> 16 kHz


def test_a_csv_of_audio_paths_is_audio_data(tmp_path):
    tone_folder(tmp_path / "clips", n_per_class=1)
    (tmp_path / "d.csv").write_text("path,label\nclips/low/0.wav,low\nclips/high/0.wav,high\n")
    data = read_data(tmp_path / "d.csv")
    assert data.modality == "audio" and data.items[0] == tmp_path / "clips/low/0.wav"


def test_preflight_names_silent_corrupt_and_empty_clips_and_states_the_rates(tmp_path):
    root = tone_folder(tmp_path / "d", n_per_class=3)
    write_wav(root / "low" / "silent.wav", np.zeros(4000, np.float32), 8000)
    (root / "high" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \xff\xff\x00\x00\x01")
    write_wav(root / "high" / "empty.wav", np.zeros(0, np.float32), 8000)
    report, clean, _, _ = check_data(read_data(root))
    reasons = {b.origin.rsplit("/", 1)[-1]: b.reason for b in report.bad}
    assert reasons["silent.wav"].startswith("silent audio")
    assert "cannot read audio" in reasons["corrupt.wav"]
    assert reasons["empty.wav"] == "zero-length audio (no samples)"
    assert len(clean) == 6 and "6 clip(s) at 8 kHz" in report.format()


@pytest.mark.fuzz
def test_fuzzed_wav_headers_never_crash_the_reader(tmp_path):
    t = np.arange(800) / 8000
    good = write_wav(tmp_path / "g.wav", (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000).read_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    p = tmp_path / "f.wav"
    for _ in range(2000):
        b = bytearray(good)
        for pos in rng.integers(0, 64, rng.integers(1, 4)):
            b[pos] = int(rng.integers(0, 256))
        p.write_bytes(bytes(b))
        try:
            read_audio(p, "f.wav")
        except BadSampleError as e:
            assert str(e).startswith("f.wav")
            refused += 1
    assert refused > 0


def test_train_augmentation_silences_one_span_of_at_most_a_tenth_of_the_clip_half_the_time():
    wave = np.ones(8000, np.float32)
    masked = 0
    for seed in range(40):
        torch.manual_seed(seed)
        x = AudioTransform(CFG, train=True)(wave)
        zeros = np.flatnonzero(x.numpy() == 0.0)
        shift = int(0.1 * CFG.sampling_rate)
        span = zeros[(zeros >= shift) & (zeros < len(wave) - shift)]  # away from the time shift's zeroed edge
        if len(span):
            masked += 1
            assert span.max() - span.min() + 1 <= len(wave) // 10 and len(span) == span.max() - span.min() + 1
    assert 8 <= masked <= 32  # about half of 40 (a mask may also fall on the shifted edge)
