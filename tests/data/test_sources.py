import json

import numpy as np
import pytest
from PIL import Image

from headstart.data.images import BadSampleError, auto_image_size, load_image
from headstart.data.sources import read_data


def test_image_folder_uses_subfolders_as_classes(image_data):
    data = read_data(image_data[0])
    assert data.modality == "image" and len(data) == 36
    assert sorted(set(data.labels)) == ["blue", "green", "red"]


def test_csv_image_paths_resolve_relative_to_the_csv(tmp_path, image_data):
    rel = image_data[0].relative_to(tmp_path) / "red" / "red_0.png"
    (tmp_path / "d.csv").write_text(f"path,label\n{rel},red\n")
    data = read_data(tmp_path / "d.csv")
    assert data.modality == "image" and data.items[0] == tmp_path / rel


def test_csv_texts_with_commas_quotes_and_unicode(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('text,label\n"a, b ""quoted"" é",x\nplain,"lab, el"\n', encoding="utf-8")
    data = read_data(p)
    assert data.items == ['a, b "quoted" é', "plain"] and data.labels == ["x", "lab, el"]


def test_configurable_column_names(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("review,sentiment\ngood,1\nbad,0\n")
    data = read_data(p, text_column="review", label_column="sentiment")
    assert data.items == ["good", "bad"] and data.labels == ["1", "0"]


def test_jsonl(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"text": "a", "label": 1}, {"text": "b", "label": 0}]))
    data = read_data(p)
    assert data.items == ["a", "b"] and data.labels == ["1", "0"]


def test_non_utf8_csv_error_names_the_file(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.csv: not valid UTF-8"):
        read_data(p)


def test_empty_csv_error(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(ValueError, match="e.csv: the file is empty"):
        read_data(p)


def test_missing_label_is_kept_as_none_for_the_preflight_to_report(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("text,label\na,x\nb,\n")
    d = read_data(p)
    assert d.labels == ["x", None] and d.origins[1].endswith("m.csv:3")


def test_missing_columns_error_lists_what_was_found(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("foo,bar\n1,2\n")
    with pytest.raises(ValueError, match=r"found \['foo', 'bar'\]"):
        read_data(p)


def test_bad_jsonl_line_is_named(tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n{oops\n')
    with pytest.raises(ValueError, match="b.jsonl:2: invalid JSON"):
        read_data(p)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK", "LA"])
def test_every_image_mode_becomes_rgb(tmp_path, mode):
    src = Image.new("RGB", (10, 6), (120, 40, 200))
    img = src.convert(mode) if mode != "I;16" else Image.fromarray(np.full((6, 10), 30000, dtype=np.uint16))
    path = tmp_path / ("x.tiff" if mode in ("I;16", "CMYK") else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (10, 6)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (10, 20)


def test_transparent_pixels_composite_on_white():
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)


def test_corrupt_image_error_names_the_file(tmp_path):
    p = tmp_path / "broken.jpg"
    p.write_text("this is text, not a jpeg")
    with pytest.raises(BadSampleError, match="broken.jpg: cannot read image"):
        load_image(p)


def test_auto_image_size_upsamples_small_images_4x_up_to_native():
    small = [np.zeros((28, 28), dtype=np.uint8)] * 3
    big = [np.zeros((600, 800, 3), dtype=np.uint8)]
    assert auto_image_size(small, 224) == 112
    assert auto_image_size(big, 224) == 224
