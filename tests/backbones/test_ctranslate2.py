import struct

import numpy as np
import pytest
import torch

from headstart.backbones.ctranslate2 import CT2Model, parse_ct2, read_ct2, serialize_ct2


def _model() -> CT2Model:
    return CT2Model("TestSpec", 2, 6, {
        "encoder/num_heads": torch.tensor(6, dtype=torch.int16),
        "encoder/w": torch.arange(6, dtype=torch.float16).reshape(2, 3),
        "decoder/e": torch.arange(4, dtype=torch.float32),
        "flag": torch.tensor(1, dtype=torch.int8),
    }, {"decoder/projection/weight": "decoder/e"})


def test_a_written_file_reads_back_with_names_shapes_dtypes_and_aliases(tmp_path):
    (tmp_path / "model.bin").write_bytes(serialize_ct2(_model()))
    m = read_ct2(tmp_path)  # the directory, as the weight package gives it
    assert (m.spec, m.revision, m.version) == ("TestSpec", 2, 6)
    assert m.get("encoder/w").dtype == torch.float16 and m.get("encoder/w").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert m.scalar("encoder/num_heads") == 6 and m.scalar("flag") == 1
    assert torch.equal(m.get("decoder/projection/weight"), torch.arange(4, dtype=torch.float32))


def test_the_header_layout_is_the_documented_one():
    raw = serialize_ct2(_model())
    assert struct.unpack_from("<I", raw, 0)[0] == 6
    assert struct.unpack_from("<H", raw, 4)[0] == len("TestSpec") + 1 and raw[6:15] == b"TestSpec\0"


def test_bfloat16_words_are_widened():
    raw = bytearray(serialize_ct2(CT2Model("S", 1, 6, {"x": torch.tensor([1.5, -2.0], dtype=torch.float16)})))
    i = raw.index(b"x\0") + 2 + 1 + 4  # name, rank, one dim
    raw[i] = 5  # dtype id: bfloat16
    raw[i + 5:i + 9] = np.array([1.5, -2.0], np.float32).view(np.uint32).__rshift__(16).astype("<u2").tobytes()
    assert parse_ct2(bytes(raw)).get("x").float().tolist() == [1.5, -2.0]


def test_a_truncated_file_is_refused_naming_it(tmp_path):
    raw = serialize_ct2(_model())
    with pytest.raises(ValueError, match=r"m\.bin: truncated CTranslate2 file"):
        parse_ct2(raw[:-7], "m.bin")


def test_a_wrong_version_or_byte_count_is_refused():
    raw = bytearray(serialize_ct2(_model()))
    with pytest.raises(ValueError, match="supported version"):
        parse_ct2(b"\x63\x00\x00\x00" + bytes(raw[4:]))
    i = raw.index(b"encoder/w\0") + len("encoder/w\0") + 1 + 8 + 1
    raw[i:i + 4] = struct.pack("<I", 999)
    with pytest.raises(ValueError, match="999 bytes do not hold shape"):
        parse_ct2(bytes(raw))


@pytest.mark.fuzz
def test_fuzzed_headers_raise_value_errors_only():
    raw = serialize_ct2(_model())
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(2000):
        b = bytearray(raw)
        for pos in rng.integers(0, 80, rng.integers(1, 4)):
            b[pos] = int(rng.integers(0, 256))
        try:
            parse_ct2(bytes(b))
            outcomes.add("ok")
        except ValueError:
            outcomes.add("refused")
    assert "refused" in outcomes
