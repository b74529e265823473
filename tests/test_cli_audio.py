import json

from typer.testing import CliRunner

from headstart.cli import app

runner = CliRunner()


def test_fit_eval_predict_an_audio_folder_through_the_cli(tmp_path, audio_tones):
    train, test, whisper = audio_tones
    out = tmp_path / "m"
    r = runner.invoke(app, ["fit", str(train), "--test", str(test), "--backbone", f"hf:{whisper}",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "audio data: train 10" in r.output and "resampling 8 kHz -> 16 kHz" in r.output
    assert (out / "model.safetensors").is_file()
    r = runner.invoke(app, ["eval", str(out), str(test), "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 4
    clip = test / "high" / "0.wav"
    r = runner.invoke(app, ["predict", str(out), str(clip), "--format", "json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    assert row["input"] == str(clip) and row["label"] in ("low", "high")
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-5
    bad = tmp_path / "clips"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \xff\xff\x00\x00\x01")
    (bad / "good.wav").write_bytes(clip.read_bytes())
    r = runner.invoke(app, ["predict", str(out), str(bad), "--out", str(tmp_path / "p.csv"), "--quiet"])
    assert r.exit_code == 0, r.output
    import pandas as pd

    rows = pd.read_csv(tmp_path / "p.csv", keep_default_na=False).set_index("input")
    assert rows.loc[str(bad / "good.wav"), "label"] == row["label"] and not rows.loc[str(bad / "good.wav"), "error"]
    assert "broken.wav: cannot read audio" in rows.loc[str(bad / "broken.wav"), "error"]
