import io

import numpy as np
import pytest
from PIL import Image

from headstart.data.sources import read_data
from headstart.data.validate import DataError, check_data
from tests.conftest import make_image, write_image_folder


def _reasons(report):
    return {b.origin.rsplit("/", 1)[-1]: b.reason for b in report.bad}


@pytest.fixture
def folder(tmp_path):
    root = write_image_folder(tmp_path / "data", 6)
    (root / "red" / "zero.png").write_bytes(b"")
    (root / "red" / "notes.jpg").write_text("this is a text file, not a photo\n")
    (root / "green" / "garbage.png").write_bytes(np.random.RandomState(0).bytes(300))
    buf = io.BytesIO()
    make_image((10, 200, 10), 5, size=64).save(buf, "JPEG")
    (root / "green" / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.new("RGB", (4, 4)).save(root / "blue" / "tiny.png")
    (root / "empty_class").mkdir()
    return root


def test_every_bad_file_is_found_with_its_reason(folder):
    report, clean, _, _ = check_data(read_data(folder), root=folder)
    r = _reasons(report)
    assert r["zero.png"] == "zero-byte file"
    assert r["notes.jpg"].startswith("text saved under an image extension")
    assert "cannot read image" in r["garbage.png"]
    assert "truncated" in r["cut.jpg"]
    assert r["tiny.png"].startswith("image too small (4x4 px")
    assert len(clean) == 18 and report.sizes == {"train": 18}
    assert any("empty_class holds no images" in w for w in report.warnings)


def test_fail_policy_lists_every_bad_sample(folder):
    with pytest.raises(DataError, match="5 bad sample") as e:
        check_data(read_data(folder), policy="fail")
    for name in ("zero.png", "notes.jpg", "garbage.png", "cut.jpg", "tiny.png"):
        assert name in str(e.value)


def test_single_class_is_refused(tmp_path):
    d = read_data(["a b", "c d"], ["x", "x"])
    with pytest.raises(DataError, match="only one class"):
        check_data(d)


def test_missing_labels_and_empty_texts_are_reported_by_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("text,label\ngood one,pos\n,neg\nbad one,\nfine,neg\n")
    report, clean, _, _ = check_data(read_data(p))
    assert {b.origin: b.reason for b in report.bad} == {f"{p}:3": "empty text", f"{p}:4": "missing label"}
    assert clean.items == ["good one", "fine"]


def test_unknown_test_labels_are_reported(tmp_path):
    train = read_data(["a", "b", "c", "d"], ["x", "y", "x", "y"])
    test = read_data(["e", "f"], ["x", "zzz"])
    report, _, _, clean_test = check_data(train, test=test)
    assert report.bad[0].reason == "label 'zzz' does not occur in the training data"
    assert clean_test.items == ["e"]


def test_duplicates_and_leakage_across_splits_are_warned(tmp_path):
    train = read_data(["The film, was GREAT", "boring", "the film was great!", "ok"], ["p", "n", "n", "p"])
    test = read_data(["boring", "fresh"], ["n", "p"])
    report, *_ = check_data(train, test=test)
    text = "\n".join(report.warnings)
    assert "train: 1 near duplicate(s) in 1 group(s)" in text and "conflicting labels" in text
    assert "leakage: 1 exact-duplicate sample(s) in both train and test" in text


def test_near_duplicate_images_are_found(tmp_path):
    yy, xx = np.mgrid[:48, :48]
    img = Image.fromarray(np.stack([xx * 5, yy * 5, (xx + yy) % 48 * 5], -1).astype(np.uint8))
    img.save(tmp_path / "a.png")
    img.resize((40, 40)).save(tmp_path / "b.jpg", quality=90)  # re-encoded and resized
    make_image((30, 30, 200), 2, size=48).save(tmp_path / "c.png")
    train = read_data([str(tmp_path / "a.png"), str(tmp_path / "c.png")], ["r", "b"])
    test = read_data([str(tmp_path / "b.jpg")], ["r"])
    report, *_ = check_data(train, test=test)
    assert any("leakage: 1 near-duplicate" in w for w in report.warnings)


def test_imbalance_ratio_is_reported():
    report, *_ = check_data(read_data(["a"] * 0 + [f"t{i}" for i in range(9)], ["x"] * 8 + ["y"]))
    assert report.imbalance == 8 and any("imbalanced (8.0x)" in w for w in report.warnings)


def test_fit_skips_bad_files_and_lists_them(folder, capsys):
    from headstart import Headstart

    est = Headstart(backbone="tiny:cnn", strategy="feature_extraction", test_size=0.0).fit(folder)
    out = capsys.readouterr().out
    assert "5 bad sample(s)" in out and "zero.png: zero-byte file" in out
    assert est.metrics_["n_train"] == 18
