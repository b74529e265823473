"""``headstart demo``: offline, on data shipped in the repository (examples/), transfer vs
training from scratch for images (Fashion-MNIST subset) and text (Rotten Tomatoes subset)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from headstart.api import Headstart
from headstart.evaluation.compare import compare_with_scratch, format_comparison

DEMOS = {
    "image": ("fashion_mnist/train", "fashion_mnist/test", "Fashion-MNIST, 200 training images, 10 classes"),
    "text": ("rotten_tomatoes/train.csv", "rotten_tomatoes/test.csv",
             "Rotten Tomatoes snippets, 200 training texts, fresh vs rotten"),
}


def examples_dir(data: Path | None = None) -> Path:
    candidates = [data, os.environ.get("HEADSTART_EXAMPLES"), Path(__file__).resolve().parents[1] / "examples"]
    for c in candidates:
        if c and (Path(c) / "fashion_mnist").is_dir():
            return Path(c)
    raise FileNotFoundError("demo data not found: run from a clone of the repository (pip install -e .) "
                            "or pass --data path/to/examples")


def run_demo(data: Path | None = None, modality: str = "both") -> dict[str, dict]:
    root = examples_dir(data)
    which = ["image", "text"] if modality == "both" else [modality]
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for m in which:
            train, test, what = DEMOS[m]
            print(f"\n== {m}: {what} ==", flush=True)
            est = Headstart(runtime={"cache_dir": cache}).fit(root / train, test=root / test)
            print("-- the strongest from-scratch baseline on the same split (a small CNN for images, TF-IDF + "
                  "logistic regression for text) --", flush=True)
            c = compare_with_scratch(est)
            print(format_comparison(c), flush=True)
            results[m] = c
    return results
