"""The planner with unlabeled target data (issue 14, item 5): does its label-free pick land near
the oracle? Fashion-MNIST source (labeled, stratified N) -> the anchors' Fashion-MNIST test images
under the developers' shift (``benchmarks/adaptation.py``; target labels for evaluation only).

    python benchmarks/planner_adaptation.py [--n 500] [--target-n 2000] [--seeds 0,1,2] [--shift heavy]
                                            [--rungs linear_probe,prototype,feature_align,feature_align_st]

Per seed: the planner (no budget) on the source with the target as ``unlabeled``; then every rung
it compared, fitted on the same source (and target) and scored on the target with its labels: the
oracle is the best of them, source-only the linear probe. Prints target accuracy of the pick,
the oracle and source-only (mean and 95% t-interval over seeds) and the planner's seconds.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.adaptation import shift  # noqa: E402
from benchmarks.splits import FMNIST_CLASSES, load_fmnist, stratified_indices  # noqa: E402
from headstart import Headstart, Planner  # noqa: E402
from headstart.evaluation.compare import mean_ci  # noqa: E402
from headstart.selection.planner import RUNGS  # noqa: E402


def one_seed(seed: int, a: argparse.Namespace, data: dict) -> dict:
    idx = stratified_indices(data["ytr"], a.n, seed)
    x, y = list(data["xtr"][idx]), [FMNIST_CLASSES[i] for i in data["ytr"][idx]]
    base = {"backbone": "efficientnet_lite0", "seed": seed, "verbose": False, "test_size": 0.0,
            "runtime": {"cache_dir": data["cache"]}}
    t0 = time.perf_counter()
    planner = Planner(Headstart(**base), rungs=a.rungs.split(","), verbose=False).fit(x, y, unlabeled=data["target"])
    secs = time.perf_counter() - t0
    acc = {}
    for rung in a.rungs.split(","):  # each rung on all the source, scored with the target labels (the oracle's view)
        est = Headstart(**{**base, **RUNGS.get(rung).params("image", 1.0)})
        est.fit(x, y, unlabeled=data["target"] if RUNGS.get(rung).adapts else None)
        acc[rung] = 100 * float(np.mean(est.predict(data["target"]) == data["yte_names"]))
    pick = planner.plan_.pick
    print(f"seed {seed}: pick {pick} {acc[pick]:.2f}%; " + ", ".join(f"{k} {v:.2f}%" for k, v in acc.items())
          + f"; planner {secs:.0f} s", flush=True)
    return {"pick": acc[pick], "oracle": max(acc.values()), "source_only": acc["linear_probe"], "seconds": secs,
            "picked": pick}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--target-n", type=int, default=2000, help="the first this many test images are the target")
    ap.add_argument("--shift", default="heavy")
    ap.add_argument("--rungs", default="linear_probe,prototype,feature_align,feature_align_st")
    a = ap.parse_args()
    xtr, ytr, xte, yte = load_fmnist()
    xte, yte = xte[:a.target_n], yte[:a.target_n]
    data = {"xtr": xtr, "ytr": ytr, "target": list(shift(xte, a.shift)),
            "yte_names": np.array([FMNIST_CLASSES[i] for i in yte], dtype=object),
            "cache": tempfile.mkdtemp(prefix="hs-plan-adapt-")}
    runs = [one_seed(int(s), a, data) for s in a.seeds.split(",")]
    print(f"\nFashion-MNIST N={a.n} -> {len(data['target'])} test images under shift '{a.shift}', "
          f"{len(runs)} seeds (target accuracy %, mean and 95% t-interval)")
    for key in ("pick", "oracle", "source_only"):
        m, lo, hi = mean_ci([r[key] for r in runs])
        print(f"  {key:<12} {m:6.2f}" + ("" if np.isnan(lo) else f" ({lo:.1f}..{hi:.1f})"))
    gap = [r["oracle"] - r["pick"] for r in runs]
    print(f"  pick - oracle: mean {-np.mean(gap):+.2f} points (per seed {', '.join(f'{-g:+.2f}' for g in gap)}); "
          f"picks {', '.join(r['picked'] for r in runs)}; planner {np.mean([r['seconds'] for r in runs]):.0f} s a seed")


if __name__ == "__main__":
    main()
