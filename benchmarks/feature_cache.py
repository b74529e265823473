"""Feature cache: a second ``fit`` with another head on the same data vs the first ``fit``.

    python benchmarks/feature_cache.py [--n 500]

Both fits use efficientnet_lite0 + feature_extraction on a Fashion-MNIST subset (the first
with a linear head, the second with an MLP head), sharing one cache directory. Prints both
times, the ratio (target >= 10x) and how many inputs the backbone saw in the second fit (0).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import load_fmnist, stratified_indices  # noqa: E402
from headstart import Headstart  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    a = ap.parse_args()
    xtr, ytr, xte, yte = load_fmnist()
    idx = stratified_indices(ytr, a.n, 0)
    X, y, test = list(xtr[idx]), ytr[idx].tolist(), (list(xte), yte.tolist())
    with tempfile.TemporaryDirectory() as cache:
        kw = dict(backbone="efficientnet_lite0", strategy="feature_extraction", runtime={"cache_dir": cache},
                  verbose=False)
        t0 = time.perf_counter()
        first = Headstart(head="linear", **kw).fit(X, y, test=test)
        t1 = time.perf_counter()
        second = Headstart(head="mlp", head_params={"hidden": [512]}, **kw).fit(X, y, test=test)
        t2 = time.perf_counter()
    print(f"first fit (computes features for {first.cache_.computed} inputs): {t1 - t0:.1f} s, "
          f"test accuracy {first.metrics_['test']['accuracy']:.4f}")
    print(f"second fit, mlp head (backbone ran on {second.cache_.computed} inputs): {t2 - t1:.1f} s, "
          f"test accuracy {second.metrics_['test']['accuracy']:.4f}")
    print(f"ratio first/second: {(t1 - t0) / (t2 - t1):.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
