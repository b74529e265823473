import numpy as np
import pytest
from PIL import Image

from headstart.data.images import BadSampleError, load_image


def test_16_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path):
    arr = np.arange(400, dtype=np.uint16).reshape(20, 20) * 150  # 0..59850
    Image.fromarray(arr).save(tmp_path / "deep.png")
    out = np.asarray(load_image(tmp_path / "deep.png"))
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 100


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    Image.new("RGB", (30, 10)).save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (10, 30)


def test_bad_array_shape_names_the_item():
    with pytest.raises(BadSampleError, match=r"item 3: image array must be"):
        load_image(np.zeros((4, 4, 5), dtype=np.uint8), "item 3")
