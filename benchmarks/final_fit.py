"""Every label counts: with no test set, ``fit`` measures the model on a held-out 20% and then
(``final_fit="all"``, the default) trains again on every label; ``"split"`` returns the model
trained on 80%. Both are scored here on the anchors' test sets (same splits as ANCHORS.md), 3 seeds.

    python benchmarks/final_fit.py [--seeds 0,1,2]

Fashion-MNIST N=100 (EfficientNet-Lite0, defaults: probe on cached multi-scale features) and
Rotten Tomatoes N=64 (MiniLM, defaults: text fine-tuning from 64 texts, 51 of them after the
hold-out, where auto picks a probe): the gain is the all-labels model minus the 80% one, paired by seed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import (  # noqa: E402
    FMNIST_CLASSES,
    load_fmnist,
    load_rotten_tomatoes,
    stratified_indices,
    text_train_indices,  # noqa: E402
)
from headstart import Headstart  # noqa: E402
from headstart.evaluation.compare import mean_ci  # noqa: E402

LABELS = ["rotten", "fresh"]


def sets():
    xtr, ytr, xte, yte = load_fmnist()
    names = [FMNIST_CLASSES[i] for i in range(10)]
    pool, pool_y, tx, ty = load_rotten_tomatoes()

    def fm(seed):
        idx = stratified_indices(ytr, 100, seed)
        return list(xtr[idx]), [names[i] for i in ytr[idx]]

    def rt(seed):
        idx = text_train_indices(pool_y, 64, seed)
        return [pool[i] for i in idx], [LABELS[int(pool_y[i])] for i in idx]
    return {"Fashion-MNIST N=100": (fm, (list(xte), [names[i] for i in yte]), {"backbone": "efficientnet_lite0",
                                                                             "preprocessing": {"image_size": 112}}),
            "Rotten Tomatoes N=64": (rt, (tx, [LABELS[int(v)] for v in ty]), {"backbone": "minilm"})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    seeds = [int(s) for s in ap.parse_args().seeds.split(",")]
    rows = []
    for name, (train, test, params) in sets().items():
        acc = {"split": [], "all": []}
        secs = {"split": [], "all": []}
        for seed in seeds:
            x, y = train(seed)
            with tempfile.TemporaryDirectory() as cache:
                for mode in ("split", "all"):
                    t0 = time.perf_counter()
                    est = Headstart(seed=seed, final_fit=mode, verbose=False, runtime={"cache_dir": cache}, **params)
                    est.fit(x, y)
                    secs[mode].append(time.perf_counter() - t0)
                    acc[mode].append(100 * est.evaluate(*test)["accuracy"])
                    print(f"  {name} seed {seed} final_fit={mode}: {acc[mode][-1]:.2f}% (n_train "
                          f"{est.metrics_['n_train']}, {secs[mode][-1]:.1f} s)", flush=True)
        gain = mean_ci(list(np.subtract(acc["all"], acc["split"])))
        rows.append((name, mean_ci(acc["split"]), mean_ci(acc["all"]), gain, np.mean(secs["split"]),
                     np.mean(secs["all"])))
    print("\n| data | trained on 80% (split) | trained on all (all) | gain, paired | fit s (split / all) |")
    print("|---|---|---|---|---|")
    for name, s, a, g, ts, ta in rows:
        print(f"| {name} | {s[0]:.2f} ({s[1]:.1f}..{s[2]:.1f}) | {a[0]:.2f} ({a[1]:.1f}..{a[2]:.1f}) | "
              f"{g[0]:+.2f} ({g[1]:+.1f}..{g[2]:+.1f}) | {ts:.0f} / {ta:.0f} |")


if __name__ == "__main__":
    main()
