import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from headstart.cli import app
from headstart.selection.memo import RankMemo, memo_key
from headstart.selection.ranking import Ranking, RankRow

SPECS = "tiny:cnn,scratch:tiny:cnn"


def _rank(data, cache, *extra):
    return CliRunner().invoke(app, ["rank", str(data), "--backbones", SPECS, "--scores", "logme,knn",
                                    "--cache-dir", str(cache), *extra])


def test_a_repeated_rank_is_answered_from_the_memo_without_importing_torch(image_data, tmp_path):
    cache = tmp_path / "c"
    first = _rank(image_data[0], cache)
    assert first.exit_code == 0, first.output
    assert "rank memo" not in first.output
    # A fresh interpreter: the memo path must not import torch (that import alone is seconds).
    code = ("import sys; from headstart.cli import app\n"
            f"try:\n    app(['rank', {str(image_data[0])!r}, '--backbones', {SPECS!r}, '--scores', 'logme,knn', "
            f"'--cache-dir', {str(cache)!r}])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('TORCH', 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "answered from the rank memo" in res.stderr
    assert "TORCH False" in res.stdout
    pick = [line for line in first.output.splitlines() if line.startswith("pick:")]
    assert pick and pick[0] in res.stdout


def test_changing_an_image_or_the_question_misses_the_memo(image_data, tmp_path):
    cache = tmp_path / "c"
    assert _rank(image_data[0], cache).exit_code == 0
    assert "rank memo" in _rank(image_data[0], cache).output
    assert "rank memo" not in _rank(image_data[0], cache, "--by", "knn").output  # another question
    img = sorted(image_data[0].rglob("*.png"))[0]
    img.write_bytes(img.read_bytes())  # same bytes, new mtime: the memo cannot tell, so it misses
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    again = _rank(image_data[0], cache)
    assert again.exit_code == 0 and "rank memo" not in again.output
    assert "rank memo" not in _rank(image_data[0], cache, "--no-memo").output


def test_memo_key_follows_the_images_a_table_names(tmp_path, image_data):
    imgs = sorted(image_data[0].rglob("*.png"))[:4]
    table = tmp_path / "d.csv"
    table.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in imgs))
    params = {"backbones": ["tiny:cnn"], "by": "logme"}
    key = memo_key(table, params)
    assert key is not None and memo_key(table, params) == key
    os.utime(imgs[2], ns=(0, imgs[2].stat().st_mtime_ns + 10**9))
    assert memo_key(table, params) != key
    assert memo_key(tmp_path / "nothing.csv", params) is None


def test_memo_keeps_only_rankings_where_every_candidate_was_scored(tmp_path):
    memo = RankMemo(tmp_path)
    ok = Ranking([RankRow("a", {"logme": 1.0})], "logme", 10, 2, "a", "highest logme")
    broken = Ranking([RankRow("a", {"logme": 1.0}), RankRow("b", error="OSError: disk")], "logme", 10, 2, "a", "r")
    memo.put("k1", ok)
    memo.put("k2", broken)
    got = memo.get("k1")
    assert got is not None and got[0].to_dict() == ok.to_dict()
    assert memo.get("k2") is None
    (memo.dir / "k3.json").write_text("{not json")
    assert memo.get("k3") is None
    assert json.loads((memo.dir / "k1.json").read_text())["ranking"]["pick"] == "a"
