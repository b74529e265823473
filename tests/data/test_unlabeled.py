"""Reading target data without labels: flat and nested image folders, CSV/JSONL without a label
column, sequences."""
import json

import pytest

from headstart.data.unlabeled import read_unlabeled
from tests.conftest import make_image, write_image_folder


def test_flat_image_folder(tmp_path):
    for i in range(3):
        make_image((10, 20, 30), i).save(tmp_path / f"{i}.png")
    data = read_unlabeled(tmp_path)
    assert data.modality == "image" and len(data) == 3 and data.labels is None


def test_nested_folder_reads_every_image_and_ignores_the_folder_names(tmp_path):
    write_image_folder(tmp_path / "t", 2)
    (tmp_path / "t" / "red" / "deeper").mkdir()
    make_image((1, 2, 3), 9).save(tmp_path / "t" / "red" / "deeper" / "x.jpg")
    (tmp_path / "t" / "notes.txt").write_text("not an image")
    data = read_unlabeled(tmp_path / "t")
    assert len(data) == 7 and data.labels is None


def test_csv_without_a_label_column_and_labels_dropped_when_present(tmp_path):
    (tmp_path / "a.csv").write_text("text\nfirst\nsecond\n")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps({"text": t, "label": 1}) for t in ("x", "y")))
    a, b = read_unlabeled(tmp_path / "a.csv"), read_unlabeled(tmp_path / "b.jsonl")
    assert (a.items, a.labels, a.modality) == (["first", "second"], None, "text") and b.labels is None


def test_sequences_and_missing_or_empty_sources(tmp_path):
    assert read_unlabeled(["one text", "two"]).modality == "text"
    with pytest.raises(FileNotFoundError):
        read_unlabeled(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        read_unlabeled(tmp_path / "empty")
