"""Time series: headstart's pretrained 1-D CNN (``ts_fcn``) against models from scratch, on the UCR
sets GunPoint, ArrowHead and OSULeaf (official train/test splits, bundled with sktime, offline).

    pip install sktime   # (--no-deps where pandas is newer than sktime allows: the loaders work)
    OMP_NUM_THREADS=1 python benchmarks/timeseries.py [--sets GunPoint,ArrowHead,OSULeaf] [--seeds 0,1,2]

``ts_fcn`` is pretrained by ``headstart.backbones.ts_pretrain`` on other sktime-bundled sets
(ACSF1, BasicMotions, ItalyPowerDemand, JapaneseVowels, PLAID, UnitTest): none of the three
targets is among its sources. The weights are built on first use (the time is printed once).

Methods, each a ``Headstart`` estimator fitted on the official training split and scored on the
official test split (``val_size=0``: every method sees all training series):
- ``headstart defaults``: ``backbone="ts_fcn"``, every default (auto: for time series, the fine-tune below);
- ``linear probe``: ``ts_fcn`` frozen, logistic regression on its cached features (C by CV);
- ``fine-tuning``: ``ts_fcn`` fine-tuned whole (``recipes.fine_tuning("timeseries")``: Fawaz et al.'s
  recipe — random head, lr 2e-3, BatchNorm trained — 400 steps);
- ``1-D CNN from scratch``: ``scratch:ts_fcn``, the same network randomly initialised and
  trained (``recipes.same_architecture_scratch``: 400 steps, lr 2e-3) — compare's "scratch";
- ``ROCKET``: ``rocket:10000-<seed>`` (10,000 random kernels, PPV + max) + the linear probe —
  compare's "classic" for time series.
Reported: test accuracy (%), mean ± half-width of the 95% Student-t interval over the seeds, and
the mean wall time of a fit (cold feature cache per run).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ci  # noqa: E402
from headstart import Headstart, recipes  # noqa: E402
from headstart.backbones.ts_pretrain import TARGETS, pretrained_fcn, sktime_set  # noqa: E402
from headstart.data import LabeledData  # noqa: E402

METHODS: dict[str, Callable[[int], dict[str, Any]]] = {
    "headstart defaults (ts_fcn, auto)": lambda seed: {"backbone": "ts_fcn"},
    "ts_fcn + linear probe": lambda seed: {"backbone": "ts_fcn", "strategy": "feature_extraction"},
    "fine-tuning ts_fcn": lambda seed: {"backbone": "ts_fcn", **recipes.fine_tuning("timeseries")},
    "1-D CNN from scratch": lambda seed: {"backbone": "scratch:ts_fcn",
                                          **recipes.same_architecture_scratch("timeseries")},
    "ROCKET 10k + linear": lambda seed: {"backbone": f"rocket:10000-{seed}", **recipes.probe()},
}


def load(name: str) -> tuple[LabeledData, LabeledData]:
    out = []
    for split in ("train", "test"):
        x, y = sktime_set(name, split)
        out.append(LabeledData(x, [str(v) for v in y], "timeseries"))
    return out[0], out[1]


def one(params: dict[str, Any], train: LabeledData, test: LabeledData, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        est = Headstart(**params, seed=seed, val_size=0.0, run=None, verbose=False,
                        runtime={"cache_dir": cache})
        est.fit(train, test=test)
        return 100 * est.metrics_["test"]["accuracy"], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(TARGETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(str(i) for i in range(len(METHODS))))
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    seeds = [int(s) for s in a.seeds.split(",")]
    names = [list(METHODS)[int(i)] for i in a.methods.split(",")]
    t0 = time.perf_counter()
    pretrained_fcn()
    print(f"ts_fcn weights ready in {time.perf_counter() - t0:.0f} s (0 when cached)", flush=True)
    rows = []
    for ds in a.sets.split(","):
        train, test = load(ds)
        print(f"\n{ds}: train {len(train)}, test {len(test)}, length {train.items[0].shape[-1]}", flush=True)
        for name in names:
            accs, secs = [], []
            for seed in seeds:
                acc, sec = one(METHODS[name](seed), train, test, seed)
                accs.append(acc)
                secs.append(sec)
                print(f"  {name} seed {seed}: {acc:.2f}%  {sec:.1f} s", flush=True)
            rows.append((ds, name, ci(accs, 1), sum(secs) / len(secs)))
    print(f"\ntest accuracy %, mean ± 95% t-interval half-width over seeds {seeds}")
    for ds, name, acc, sec in rows:
        print(f"{ds:<10} {name:<36} {acc:>12}  {sec:6.1f} s")


if __name__ == "__main__":
    main()
