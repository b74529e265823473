"""``headstart shift`` end to end: generated image folders with a tiny random CNN, text CSVs
with TF-IDF; the target unlabeled (a flat folder, a CSV without a label column)."""
import json
import random
import subprocess
import sys
from pathlib import Path

from PIL import ImageOps
from typer.testing import CliRunner

from headstart.cli import app
from tests.conftest import COLOURS, make_image, write_image_folder

runner = CliRunner()


def test_cli_finds_the_shift_to_inverted_images_and_writes_json_and_plot(tmp_path):
    source = write_image_folder(tmp_path / "source", 12, 0)
    flat = tmp_path / "target"
    flat.mkdir()
    for c, rgb in COLOURS.items():  # the same scenes, colours inverted, no class folders
        for i in range(12):
            ImageOps.invert(make_image(rgb, 5000 + i)).save(flat / f"{c}_{i}.png")
    out = tmp_path / "out"
    r = runner.invoke(app, ["shift", str(source), str(flat), "--backbone", "tiny:cnn", "--permutations", "200",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "the target differs from the training data" in r.output
    saved = json.loads((out / "shift.json").read_text())
    assert saved["shifted"] and saved["p_value"] < 0.01 and saved["domain_accuracy"] > 0.9
    assert (saved["n_source"], saved["n_target"]) == (36, 36) and (out / "shift.png").is_file()


def _texts(path, n, words, seed, label=True):
    rnd = random.Random(seed)
    rows = [f"the {rnd.choice(words)} was {rnd.choice(words)} and {rnd.choice(words)}" for _ in range(n)]
    path.write_text(("text,label\n" if label else "text\n")
                    + "".join(f"{t},{i % 2}\n" if label else f"{t}\n" for i, t in enumerate(rows)))
    return path


FILM = ["film", "plot", "acting", "great", "boring", "moving", "cast", "score"]
FOOD = ["soup", "bread", "sauce", "salty", "fresh", "spicy", "crust", "stew"]


def test_cli_on_text_csvs_with_tfidf_tells_another_topic_apart(tmp_path):
    src, tgt = _texts(tmp_path / "s.csv", 60, FILM, 0), _texts(tmp_path / "t.csv", 60, FOOD, 1, label=False)
    r = runner.invoke(app, ["shift", str(src), str(tgt), "--backbone", "tfidf:1-2", "--permutations", "200",
                            "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])
    assert report["shifted"] and report["domain_accuracy"] > 0.9 and report["modality"] == "text"


def test_cli_on_text_from_the_same_source_finds_no_shift(tmp_path):
    src, tgt = _texts(tmp_path / "s.csv", 60, FILM, 0), _texts(tmp_path / "t.csv", 60, FILM, 1, label=False)
    r = runner.invoke(app, ["shift", str(src), str(tgt), "--backbone", "tfidf:1-2", "--permutations", "200",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "no detectable shift" in r.output


def test_cli_says_what_is_wrong_when_the_modalities_differ(tmp_path):
    source = write_image_folder(tmp_path / "source", 2, 0)
    r = runner.invoke(app, ["shift", str(source), str(_texts(tmp_path / "t.csv", 5, FOOD, 1)), "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 1 and "the source is image data but the target is text" in r.output


def test_shift_help_loads_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from headstart.cli import app; "
            "r = CliRunner().invoke(app, ['shift', '--help']); "
            "print(r.exit_code, 'torch' in sys.modules, '--permutations' in r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["0", "False", "True"]
