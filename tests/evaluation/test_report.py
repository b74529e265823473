import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import headstart
from headstart.data.sources import read_data
from headstart.evaluation.compare import run_comparison
from headstart.evaluation.report import write_comparison_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def text_report(tmp_path_factory):
    from tests.conftest import write_text_csv
    tmp = tmp_path_factory.mktemp("report")
    train = read_data(write_text_csv(tmp / "train.csv", 40, 0))
    test = read_data(write_text_csv(tmp / "test.csv", 20, 1))
    comp = run_comparison(train, test, {"backbone": "tiny:bert", "runtime": {"cache_dir": tmp / "cache"}},
                          methods=["majority", "classic", "linear_probe"], sizes=[20, "all"], seeds=[0, 1], log=None)
    return comp, write_comparison_report(comp, test, tmp / "out", title="test report")


def test_comparison_covers_every_method_size_and_seed_with_intervals(text_report):
    comp, _ = text_report
    assert len(comp.runs) == 3 * 2 * 2
    rows = {(r["method"], r["n"]): r for r in comp.summary()}
    assert rows[("majority", 40)]["accuracy"] == pytest.approx(50.0)  # balanced test set
    assert rows[("classic", 40)]["ci_low"] <= rows[("classic", 40)]["accuracy"] <= rows[("classic", 40)]["ci_high"]
    assert any("labels" in v for v in comp.verdicts())


def test_report_is_self_contained_and_has_its_metrics_json(text_report):
    comp, path = text_report
    page = path.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched
    assert page.count('class="plot"') >= 3  # two learning curves and the confusion matrix
    assert "Most confidently wrong" in page
    assert "<q>" in page or "No test example was misclassified" in page  # text snippets
    import json
    assert json.loads((path.parent / "metrics.json").read_text())["sizes"] == [20, 40]


def test_report_renders_in_headless_chromium_with_every_plot_and_no_console_error(text_report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    _, path = text_report
    shot = tmp_path / "shot.png"
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'ud'}",
                          "--window-size=1200,3000", "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                          path.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    rendered = [re.search(r"(\d+)/(\d+) plots rendered", line) for line in console]
    rendered = [m for m in rendered if m]
    assert rendered, f"the report's check script did not run: {res.stderr[-2000:]}"
    ok, total = map(int, rendered[0].groups())
    assert total >= 3 and ok == total
    assert not [line for line in console if "plots rendered" not in line], console  # no errors or warnings
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page


def test_fit_writes_its_report_beside_the_bundle(image_data, tmp_path):
    train, test = image_data
    headstart.fit(train, test=test, backbone="tiny:cnn", strategy="feature_extraction", verbose=False, run={"out": tmp_path / "b"}, runtime={"cache_dir": tmp_path / "c"})
    page = (tmp_path / "b" / "report.html").read_text()
    assert "Confusion matrix" in page and "Pre-flight data check" in page
    assert (tmp_path / "b" / "metrics.json").is_file()


def test_fit_with_an_output_directory_logs_tensorboard_events(image_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train, test = image_data
    headstart.fit(train, test=test, backbone="tiny:cnn", strategy="feature_extraction", head="mlp", strategy_params={"steps": 20}, verbose=False, run={"out": tmp_path / "b"}, runtime={"cache_dir": tmp_path / "c"})
    events = list((tmp_path / "b" / "logs").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent)).Reload()
    tags = acc.Tags()["scalars"]
    assert "head/train_loss" in tags and "test/accuracy" in tags
    assert len(acc.Scalars("head/train_loss")) >= 5  # one point per epoch


def test_an_adapted_fit_reports_domain_adaptation_and_writes_adaptation_json(tmp_path):
    import json

    from tests.conftest import write_image_folder
    src, tgt = write_image_folder(tmp_path / "src", 8), write_image_folder(tmp_path / "tgt", 5, seed=1)
    tt = write_image_folder(tmp_path / "tt", 4, seed=2)
    out = tmp_path / "b"
    est = headstart.Headstart(backbone="tiny:cnn", adapt="auto", verbose=False, run={"out": out},
                              runtime={"cache_dir": tmp_path / "c"}).fit(src, unlabeled=tgt, target_test=tt)
    page = (out / "report.html").read_text()
    section = page[page.index("<h2>Domain adaptation</h2>"):]
    for what in ("source test split", "target test", "domain classifier accuracy", "MMD²", "Label-free pick",
                 "Oracle pick", "Per-class target accuracy", "domains before adaptation", "domains after adaptation"):
        assert what in section, what
    saved = json.loads((out / "adaptation.json").read_text())
    acc = est.adaptation_.accuracy["target_test"]
    assert saved["accuracy"]["target_test"] == acc and saved["oracle"]["pick"] in ("source_only", "adapted")
    assert saved["shift_before"]["domain_accuracy"] == est.adaptation_.shift_before.domain_accuracy
    assert (out / "adaptation-before.png").read_bytes()[:4] == b"\x89PNG"
    assert saved["final_target_accuracy"] is not None  # final_fit=all: the returned model measured too


def _wrong_clips(tmp_path):
    """Two 8 kHz tone clips, both predicted wrong with high confidence."""
    from headstart.testing.audio import tone_folder

    root = tone_folder(tmp_path / "tones", n_per_class=1, seconds=0.5)
    items = [str(root / "low" / "0.wav"), str(root / "high" / "0.wav")]
    return items, ["low", "high"], np.array([[0.1, 0.9], [0.8, 0.2]]), ["low", "high"]


def test_confidently_wrong_audio_clips_play_and_show_their_spectrograms(tmp_path):
    import base64
    import io

    import soundfile as sf

    from headstart.evaluation.report import confidently_wrong

    html = confidently_wrong(*_wrong_clips(tmp_path), modality="audio")
    players = re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,([^"]+)"', html)
    assert len(players) == 2 and html.count('class="plot" alt="spectrogram of') == 2
    wave, rate = sf.read(io.BytesIO(base64.b64decode(players[0])))
    assert rate == 16000 and len(wave) == 8000  # 0.5 s resampled from 8 kHz to 16 kHz
    assert "true <b>low</b>, predicted <b>high</b> (90%)" in html


def test_an_audio_report_renders_its_spectrograms_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from headstart.evaluation.report import confidently_wrong, page

    path = tmp_path / "report.html"
    path.write_text(page("audio", [("Most confidently wrong", confidently_wrong(*_wrong_clips(tmp_path), "audio"))], []))
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'ud'}",
                          "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert 'data-plots="2/2"' in res.stdout, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line and "plots rendered" not in line]
    assert not console, console


def test_an_audio_fit_report_says_what_the_model_heard(audio_tones, tmp_path):
    train, test, whisper = audio_tones
    headstart.fit(str(train), test=str(test), backbone=f"hf:{whisper}", verbose=False, run={"out": tmp_path / "b"},
                  runtime={"cache_dir": False})
    page = (tmp_path / "b" / "report.html").read_text()
    assert "Confusion matrix" in page and "Most confidently wrong" in page
    assert "resampled to 16 kHz" in page and "clips cut to 1 s" in page  # the tiny Whisper reads 1 s
    assert "audio: 14 clip(s) at 8 kHz" in page  # the pre-flight: 10 training and 4 test clips
