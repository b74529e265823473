"""Multi-label benchmark: Fashion-MNIST 2x2 mosaics, 3 seeds, mean and 95% Student-t interval.

    python benchmarks/multilabel.py [--sizes 200,1000] [--seeds 0,1,2] [--methods prior,pixels_lr,default]
                                    [--cache DIR]

Data (built here from the Debian package ``dataset-fashion-mnist``, MIT): a mosaic is a 56x56
greyscale image cut into four 28x28 cells; it holds k items, k uniform in {1, 2, 3, 4}, placed in
k random cells (the other cells stay black), each item a uniformly drawn Fashion-MNIST image.
Its labels are the set of classes present (two items of one class give one label). Training
mosaics use only the official 60k training images (numpy RandomState(seed)); the 1000 test
mosaics use only the official 10k test images (RandomState(12345), the same for every seed and
size). A seed's N=200 set is the first 200 of its N=1000 set (one RNG stream), so nested
training sets, and the feature cache serves the smaller one. Mosaics go to ``fit`` in memory,
as uint8 arrays.

Methods:
  ``prior``      label frequencies as scores for every example; it predicts the labels whose
                 training frequency is >= t, with t the value (among the frequencies, or above all
                 of them) that maximises micro-F1 on the training set;
  ``pixels_lr``  one scikit-learn logistic regression per label on the 3136 raw pixels / 255
                 (standardised), C by 3-fold CV (LogisticRegressionCV, 6 values 1e-4..10), threshold 0.5;
  ``default``    ``Headstart(task="multilabel")``: default backbone (efficientnet_lite0), strategy
                 (auto) and input size (auto: 4x the 56 px side = 224);
  ``fine_tuning`` the same with ``strategy="fine_tuning"`` (slow on CPU: not in the default list).
Metrics as headstart's multilabel task computes them: micro-F1, macro-F1, mAP (macro over labels
with both outcomes in the test set), subset accuracy. Time: wall seconds of one fit + test
evaluation, mean over seeds; the feature cache is shared within one run (so the first headstart
seed also pays for the test features), fresh per run unless ``--cache`` names one.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ci  # noqa: E402
from benchmarks.splits import FMNIST_CLASSES, load_fmnist  # noqa: E402

TEST_SEED = 12345
N_TEST = 1000
METRICS = ["micro_f1", "macro_f1", "map", "subset_accuracy"]


def load_pools() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The full official train (60k) and test (10k) images and labels."""
    return load_fmnist(test_size=None)


def mosaics(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """n mosaics (56, 56) uint8 and their (n, 10) multi-hot targets."""
    rng = np.random.RandomState(seed)
    imgs, targets = [], np.zeros((n, 10), dtype=np.int64)
    for i in range(n):
        m = np.zeros((56, 56), dtype=np.uint8)
        k = rng.randint(1, 5)
        for cell, j in zip(rng.choice(4, k, replace=False), rng.randint(0, len(x), k)):
            r, c = divmod(int(cell), 2)
            m[28 * r:28 * r + 28, 28 * c:28 * c + 28] = x[j]
            targets[i, y[j]] = 1
        imgs.append(m)
    return imgs, targets


def as_labels(t: np.ndarray) -> list[tuple[str, ...]]:
    return [tuple(FMNIST_CLASSES[k] for k in np.flatnonzero(row)) for row in t]


def scores(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The same definitions as headstart.tasks.multilabel.MultiLabelTask.metrics."""
    from sklearn.metrics import average_precision_score, f1_score

    y, pred = y > 0, pred > 0
    present = y.any(0) & ~y.all(0)
    return {"micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "map": float(average_precision_score(y[:, present], p[:, present], average="macro")),
            "subset_accuracy": float(np.mean(np.all(y == pred, axis=1)))}


def prior(xtr: list, ttr: np.ndarray, xte: list, tte: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    freq = ttr.mean(0)
    cands = np.append(np.unique(freq), np.inf)  # inf: predict nothing
    f1 = [f1_score(ttr > 0, np.broadcast_to(freq >= t, ttr.shape), average="micro", zero_division=0) for t in cands]
    t = cands[int(np.argmax(f1))]
    return scores(tte, np.tile(freq, (len(tte), 1)), np.tile(freq >= t, (len(tte), 1)))


def pixels_lr(xtr: list, ttr: np.ndarray, xte: list, tte: np.ndarray, seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    a = np.stack(xtr).reshape(len(xtr), -1) / 255.0
    b = np.stack(xte).reshape(len(xte), -1) / 255.0
    sc = StandardScaler().fit(a)
    a, b = sc.transform(a), sc.transform(b)
    p = np.zeros(tte.shape)
    for k in range(ttr.shape[1]):
        if ttr[:, k].min() == ttr[:, k].max():  # a label absent (or always present) in training
            p[:, k] = ttr[0, k]
            continue
        lr = LogisticRegressionCV(Cs=np.logspace(-4, 1, 6), cv=3, max_iter=2000, n_jobs=2, random_state=seed)
        p[:, k] = lr.fit(a, ttr[:, k]).predict_proba(b)[:, 1]
    return scores(tte, p, p >= 0.5)


def headstart(xtr: list, ttr: np.ndarray, xte: list, tte: np.ndarray, seed: int, cache: str,
              **params) -> dict[str, float]:
    from headstart import Headstart

    est = Headstart(task="multilabel", seed=seed, verbose=False, runtime={"cache_dir": cache}, **params)
    est.fit(xtr, as_labels(ttr), test=(xte, as_labels(tte)))
    return {k: float(est.metrics_["test"][k]) for k in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200,1000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="prior,pixels_lr,default")
    ap.add_argument("--cache", default=None, help="feature cache dir (default: a fresh temporary one)")
    a = ap.parse_args()
    start = time.perf_counter()
    warnings.filterwarnings("ignore", category=FutureWarning)  # LogisticRegressionCV's 1.10 notices
    cache = a.cache or tempfile.mkdtemp(prefix="headstart-bench-multilabel-")
    x, y, xt, yt = load_pools()
    xte, tte = mosaics(xt, yt, N_TEST, TEST_SEED)
    print(f"test: {N_TEST} mosaics, {tte.sum(1).mean():.2f} labels each; label frequency "
          f"{tte.mean(0).min():.2f}-{tte.mean(0).max():.2f}; feature cache {cache}", flush=True)
    runners = {"prior": lambda *d, seed: prior(*d), "pixels_lr": lambda *d, seed: pixels_lr(*d, seed),
               "default": lambda *d, seed: headstart(*d, seed, cache),
               "fine_tuning": lambda *d, seed: headstart(*d, seed, cache, strategy="fine_tuning")}
    rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        for method in a.methods.split(","):
            res, secs = {k: [] for k in METRICS}, []
            for seed in [int(s) for s in a.seeds.split(",")]:
                xtr, ttr = mosaics(x, y, n, seed)
                t0 = time.perf_counter()
                r = runners[method](xtr, ttr, xte, tte, seed=seed)
                secs.append(time.perf_counter() - t0)
                for k in METRICS:
                    res[k].append(r[k])
                print(f"  N={n} {method} seed {seed}: " + "  ".join(f"{k} {r[k]:.4f}" for k in METRICS)
                      + f"  {secs[-1]:.1f} s", flush=True)
            rows.append(f"| {n} | {method} | " + " | ".join(ci(res[k]) for k in METRICS)
                        + f" | {np.mean(secs):.1f} |")
    print(f"\nFashion-MNIST 2x2 mosaics, test {N_TEST} mosaics; mean ± 95% t-interval half-width over "
          f"{len(a.seeds.split(','))} seeds\n")
    print("| N train | method | micro-F1 | macro-F1 | mAP | subset acc. | s / seed |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
