"""Read a CTranslate2 ``model.bin`` (binary format versions 3 to 6) into named tensors, without
the ctranslate2 runtime: headstart only needs the weights, and the format is small.

Layout (little-endian; a *string* is ``uint16 length`` incl. the NUL, the bytes, the NUL)::

    uint32 binary_version            # 6 for current converters
    string spec name                 # e.g. "WhisperSpec"              (version >= 2)
    uint32 spec revision             #                                   (version >= 2)
    uint32 number of variables
    per variable:
        string name                  # scopes joined by "/": "encoder/layer_0/ffn/linear_0/weight"
        uint8  rank, then rank x uint32 dims
        uint8  dtype id              # 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
        uint32 number of bytes, then the raw values (row-major)
    uint32 number of aliases         #                                   (version >= 3)
    per alias: string alias, string target name   # e.g. decoder/projection/weight -> embeddings

Reference: CTranslate2, ``python/ctranslate2/specs/model_spec.py`` (``ModelSpec._serialize``).
Every length is checked against the file, so a truncated or corrupt file raises ``ValueError``
naming it (never a crash or a huge allocation).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# dtype id -> numpy dtype; bfloat16 (5) is read as raw 16-bit words and widened below
DTYPES: dict[int, np.dtype] = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"),
                               3: np.dtype("<i4"), 4: np.dtype("<f2"), 5: np.dtype("<u2")}
MAX_RANK = 8


@dataclass
class CT2Model:
    """The contents of a ``model.bin``: spec name and revision, variables, aliases."""

    spec: str
    revision: int
    version: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> torch.Tensor:
        """A variable by name, following an alias (``decoder/projection/weight``) if needed."""
        return self.variables[self.aliases.get(name, name)]

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(-1)[0])


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"{self.where}: truncated CTranslate2 file (needs {n} bytes at offset {self.pos}, "
                             f"has {len(self.data) - self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.num("H"))
        if not raw or raw[-1] != 0:
            raise ValueError(f"{self.where}: malformed string at offset {self.pos - len(raw)}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{self.where}: non-UTF-8 name at offset {self.pos - len(raw)}") from None


def _variable(r: _Reader) -> tuple[str, torch.Tensor]:
    name = r.string()
    rank = r.num("B")
    if rank > MAX_RANK:
        raise ValueError(f"{r.where}: variable {name!r} has rank {rank} (corrupt header)")
    shape = tuple(r.num("I") for _ in range(rank))
    dtype_id = r.num("B")
    if dtype_id not in DTYPES:
        raise ValueError(f"{r.where}: variable {name!r} has unknown dtype id {dtype_id}")
    nbytes = r.num("I")
    dt = DTYPES[dtype_id]
    if nbytes != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
        raise ValueError(f"{r.where}: variable {name!r}: {nbytes} bytes do not hold shape {shape} of {dt}")
    arr = np.frombuffer(r.take(nbytes), dtype=dt).reshape(shape)
    if dtype_id == 5:  # bfloat16: the high half of a float32
        return name, torch.from_numpy(arr.astype(np.uint32) << 16).view(torch.float32).to(torch.bfloat16)
    return name, torch.from_numpy(arr.copy())


def parse_ct2(data: bytes, where: str = "model.bin") -> CT2Model:
    """Parse the bytes of a CTranslate2 model file (see the module docstring for the layout)."""
    r = _Reader(data, where)
    version = r.num("I")
    if not 3 <= version <= 6:
        raise ValueError(f"{where}: not a CTranslate2 model of a supported version (header says {version}, "
                         "expected 3 to 6)")
    spec, revision = r.string(), r.num("I")
    count = r.num("I")
    if count > len(data) // 8:  # each variable takes at least 8 bytes
        raise ValueError(f"{where}: claims {count} variables in {len(data)} bytes (corrupt header)")
    variables = dict(_variable(r) for _ in range(count))
    aliases = {}
    for _ in range(r.num("I")):
        alias, target = r.string(), r.string()
        if target not in variables:
            raise ValueError(f"{where}: alias {alias!r} points to missing variable {target!r}")
        aliases[alias] = target
    return CT2Model(spec, revision, version, variables, aliases)


def read_ct2(path: str | Path) -> CT2Model:
    """Read ``path`` (a ``model.bin`` or the directory holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.bin"
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ValueError(f"{p}: cannot read ({e.strerror or e})") from None
    return parse_ct2(data, str(p))


def serialize_ct2(model: CT2Model) -> bytes:
    """The inverse of ``parse_ct2`` (binary version 6): tests build small files with it."""
    ids = {str(dt): i for i, dt in DTYPES.items() if i != 5}  # bfloat16 is not written

    def string(s: str) -> bytes:
        raw = s.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), string(model.spec), struct.pack("<II", model.revision, len(model.variables))]
    for name, t in model.variables.items():
        arr = np.ascontiguousarray(t.detach().cpu().numpy())
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        out += [string(name), struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}I", *arr.shape),
                struct.pack("<BI", ids[str(arr.dtype)], arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(model.aliases)))
    for alias, target in model.aliases.items():
        out += [string(alias), string(target)]
    return b"".join(out)
