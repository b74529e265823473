"""Fuzzing the data readers, the pre-flight check and ``predict`` (hypothesis, derandomized so
CI is reproducible). Every generated input must either work or fail with a clear ValueError /
FileNotFoundError naming the input; any other exception is a bug. Marked ``fuzz`` (about
10,000 inputs over the file)."""
import csv
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from headstart.data.images import BadSampleError, load_image
from headstart.data.sources import read_data
from headstart.data.validate import DataError, check_data

pytestmark = pytest.mark.fuzz
CLEAR = (ValueError, FileNotFoundError)  # BadSampleError and DataError are ValueErrors
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _huge_png_header(width=20000, height=20000):
    """A valid 1x1 PNG whose IHDR claims width x height: a decompression-bomb header."""
    raw = bytearray(_encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = raw[12:29]  # b"IHDR" + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    raw[12:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(raw)


def _exif_rotated():
    img = Image.fromarray(np.arange(24 * 16 * 3, dtype=np.uint8).reshape(16, 24, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    return _encode(img, "JPEG", exif=exif)


def _seeds():
    rgb = Image.fromarray(np.random.RandomState(0).randint(0, 255, (20, 24, 3), dtype=np.uint8))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    return {
        "png": _encode(rgb, "PNG"), "jpeg": _encode(rgb, "JPEG"), "cmyk": _encode(rgb.convert("CMYK"), "JPEG"),
        "png16": _encode(Image.fromarray(np.arange(400, dtype=np.uint16).reshape(20, 20) * 100), "PNG"),
        "palette": _encode(pal, "PNG", transparency=0), "la": _encode(rgb.convert("LA"), "PNG"),
        "gif": _encode(rgb.convert("P"), "GIF"), "bmp": _encode(rgb, "BMP"), "tiff": _encode(rgb, "TIFF"),
        "webp": _encode(rgb, "WEBP"), "exif": _exif_rotated(), "huge": _huge_png_header(), "empty": b"",
        "text": b"label,path\nthis is not an image\n",
    }


SEEDS = _seeds()


@st.composite
def mutated_files(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["keep", "truncate", "flip", "insert", "header"]))
        if op == "truncate" and data:
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(max_size=16))
        elif op == "header" and len(data) > 24:  # scribble over the dimensions area
            i = draw(st.integers(8, 24))
            data[i:i + 4] = draw(st.binary(min_size=4, max_size=4))
    ext = draw(st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tiff", ".webp"]))
    return bytes(data), ext


@settings(FUZZ, max_examples=6000)
@given(mutated_files())
def test_image_files_load_or_fail_clearly(tmp_path_factory, sample):
    data, ext = sample
    path = tmp_path_factory.mktemp("f", numbered=True) / f"x{ext}"
    path.write_bytes(data)
    try:
        img = load_image(path)
        assert img.mode == "RGB" and min(img.size) > 0
    except BadSampleError as e:
        assert str(path) in str(e)
    report, clean, _, _ = _check_one(path)
    assert len(clean) + len(report.bad) == 2


def _check_one(path):
    data = read_data([str(path), str(path.with_name("ok.png"))], ["a", "b"])
    Image.new("RGB", (16, 16)).save(path.with_name("ok.png"))
    try:
        return check_data(data, min_classes=1)
    except DataError as e:
        assert "no usable training samples" not in str(e)
        raise


labels = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(FUZZ, max_examples=2500)
@given(st.lists(st.tuples(texts, labels), max_size=8), st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_csv_files_read_or_fail_clearly(tmp_path_factory, rows, encoding):
    path = tmp_path_factory.mktemp("c", numbered=True) / "d.csv"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["text", "label"])
    w.writerows(rows)
    try:
        path.write_bytes(buf.getvalue().encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(buf.getvalue().encode("utf-8", "replace"))
    try:
        data = read_data(path)
        report, clean, _, _ = check_data(data)
    except CLEAR as e:
        assert str(path) in str(e) or "class" in str(e) or "samples" in str(e)
        return
    assert len(clean) + len(report.bad) == len(data)


@settings(FUZZ, max_examples=1200)
@given(st.binary(max_size=200), st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_raw_bytes_as_table_files_fail_clearly(tmp_path_factory, data, ext):
    path = tmp_path_factory.mktemp("b", numbered=True) / f"d{ext}"
    path.write_bytes(data)
    try:
        d = read_data(path)
        check_data(d)
    except CLEAR:
        pass


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from headstart import Headstart
    from tests.conftest import write_image_folder

    root = write_image_folder(tmp_path_factory.mktemp("fit") / "d", 4)
    return Headstart(backbone="tiny:cnn", strategy="feature_extraction", verbose=False, test_size=0.0, runtime={"cache_dir": False}).fit(root)


@settings(FUZZ, max_examples=400)
@given(mutated_files())
def test_predict_on_fuzzed_files_fails_clearly_or_predicts(fitted, tmp_path_factory, sample):
    data, ext = sample
    path = tmp_path_factory.mktemp("p", numbered=True) / f"x{ext}"
    path.write_bytes(data)
    try:
        pred = fitted.predict([str(path)])
        assert pred[0] in fitted.classes_
    except CLEAR as e:
        assert str(path) in str(e)
