import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from headstart.backbones.archive import MultiPartReader, assemble, only_subfolder


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _split(blob: bytes, folder: Path, n: int = 3) -> tuple[list[Path], str]:
    """``blob`` cut into ``n`` part files (like the PyPI packages), and its digest."""
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-len(blob) // n)
    parts = []
    for i in range(n):
        p = folder / f"model.zip.{i + 1:03d}"
        p.write_bytes(blob[i * step:(i + 1) * step])
        parts.append(p)
    return parts, hashlib.sha256(blob).hexdigest()


def test_multipart_reader_reads_and_seeks_across_part_boundaries(tmp_path):
    blob = bytes(range(256)) * 40
    parts, _ = _split(blob, tmp_path, n=4)
    with MultiPartReader(parts) as r:
        r.seek(2555)
        assert r.read(100) == blob[2555:2655]
        r.seek(-10, io.SEEK_END)
        assert r.read() == blob[-10:]


def test_assemble_unzips_the_parts_once_and_reuses_the_folder(tmp_path):
    parts, digest = _split(_zip({"m/config.json": b"{}", "m/weights.bin": os.urandom(5000)}), tmp_path / "p")
    target = tmp_path / "cache" / "m-1"
    out = assemble(parts, digest, target)
    assert (out / "m" / "config.json").read_bytes() == b"{}" and only_subfolder(out) == out / "m"
    for p in parts:  # a second call never reads the parts again
        p.unlink()
    assert assemble(parts, digest, target) == out


def test_assemble_refuses_a_digest_mismatch_and_writes_nothing(tmp_path):
    parts, _ = _split(_zip({"a.txt": b"x"}), tmp_path / "p")
    target = tmp_path / "cache" / "m"
    with pytest.raises(ValueError, match="SHA-256 is .* expected 0+"):
        assemble(parts, "0" * 64, target)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"])
def test_assemble_refuses_entries_outside_the_target(tmp_path, name):
    parts, digest = _split(_zip({"fine.txt": b"1", name: b"2"}), tmp_path / "p")
    target = tmp_path / "cache" / "m"
    with pytest.raises(ValueError, match="zip-slip"):
        assemble(parts, digest, target)
    assert not target.exists() and not (tmp_path / "evil.txt").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no temporary folder left behind


def test_assemble_refuses_a_symbolic_link_entry(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    parts, digest = _split(buf.getvalue(), tmp_path / "p", n=1)
    with pytest.raises(ValueError, match="symbolic link"):
        assemble(parts, digest, tmp_path / "cache" / "m")


def test_an_interrupted_extraction_leaves_no_folder_to_be_used(tmp_path):
    """A corrupt member fails mid-extraction: the target never appears (the partial extraction
    was in a temporary sibling, removed), and a later call with good parts succeeds."""
    good = _zip({"a.bin": os.urandom(3000), "b.bin": os.urandom(3000)})
    i = good.rfind(b"PK\x01\x02")  # where the central directory starts, after the last member's data
    bad = bytearray(good)
    bad[i - 50] ^= 0xFF  # flip a byte in the last member's compressed data: CRC error while extracting
    parts, digest = _split(bytes(bad), tmp_path / "bad")
    target = tmp_path / "cache" / "m"
    with pytest.raises(zipfile.BadZipFile):
        assemble(parts, digest, target)
    assert not target.exists() and list((tmp_path / "cache").iterdir()) == []
    parts, digest = _split(good, tmp_path / "good")
    assert (assemble(parts, digest, target) / "b.bin").is_file()


def test_a_stale_temporary_folder_is_never_taken_for_the_result(tmp_path):
    parts, digest = _split(_zip({"a.txt": b"whole"}), tmp_path / "p")
    target = tmp_path / "cache" / "m"
    stale = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    stale.mkdir(parents=True)
    (stale / "half").write_bytes(b"")
    out = assemble(parts, digest, target)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and not stale.exists()
