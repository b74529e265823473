"""The planner against running every rung to completion (issue 5).

For each dataset: every rung of the ladder at full budget on the whole training set, scored on
the test set (the "oracle" table; its compute is the fits' wall time, scoring the test set not
included); then the planner on the same training
set (it holds out its own validation split), its pick's test accuracy and its total time.

    python benchmarks/planner.py [--datasets stamps,digits,fmnist100,rt64,fmnist500,rt500] [--seed 0]

Targets: the pick within 1 accuracy point of the best rung run to completion, at no more than
40% of the compute of running every rung (Rotten Tomatoes N=500, where the best rung is the full
fine-tune and nearly all of that compute: at most 1.5x the best rung's own compute; issue 12
item 10; the same for N=64, where the best rung is fit's default, contrastive tuning, at 58-63% of
that compute); on a dataset where a small CNN from scratch wins, the
planner picks the scratch rung or ties it. The issue suggested scikit-learn's 8x8 digits, but
there headstart's multi-scale ImageNet features win (99% against 96% for the small CNN), so the
scratch-wins case is ``stamps``: 12x12 noise images, the class is which of 10 random 4x4 binary
patterns is stamped at a random place (far from ImageNet, low resolution, template matching
that a small CNN learns exactly).

Measured 2026-12-03/04, seed 0 unless said, 1 torch thread (OMP_NUM_THREADS=1), 2 shared cores:

    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 2              # 2026-12-04 04:01, the hold; quiet (load 1.0 before, 1.4 after)
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 2              # 2026-12-04, the hold; load 2.5 before, 3.2 after
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 0              # 2026-12-04, the hold; load 3.2 before, 3.3 after
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 1              # 2026-12-04, the hold; load 3.3 before, 3.5 after
    python benchmarks/planner.py --datasets rt500                                 # 2026-12-04, the hold; load 2.7 before and after (not chrt)
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 1              # z_default 1.96; load 1.1 before, 2.5 after
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 0              # z_default 1.96; load 2.5 before, 2.2 after
    chrt -r 10 python benchmarks/planner.py --datasets rt64 --seed 2              # z_default 1.96; load 2.2 before, 4.0 after
    python benchmarks/planner.py --datasets rt500                                 # z_default 1.96; load 1.6 before, 1.1 after (not chrt): unchanged, 77.70%, 1.38x
    python benchmarks/planner.py --datasets fmnist100                             # z_default 1.96; load 2-4.7 (not chrt): prototype 76.75%, gap +0.65, 14%: PASS
    chrt -r 10 python benchmarks/planner.py --datasets rt64                       # load ~5.7 before, 6.0 after (3 helpers niced); the tied default continued
    chrt -r 10 python benchmarks/planner.py --datasets rt64                       # load ~3.8 after; at main with contrastive lr 1e-4
    chrt -r 10 python benchmarks/planner.py --datasets rt64                       # load ~3.7 before (fit's default wins ties)
    chrt -r 10 python benchmarks/planner.py --datasets rt64                       # load ~6 before (before that)
    python benchmarks/planner.py --datasets fmnist500 --json f500.json            # load ~6 (not chrt: 25 min)
    python benchmarks/planner.py --datasets fmnist500 --oracle-from f500.json     # the planner again, MLP race
    python benchmarks/planner.py --datasets rt500                                 # load ~2.4 before, 2.0 after (not chrt; quarter = 1 epoch)
    python benchmarks/planner.py --datasets rt500                                 # load ~5.5 (not chrt; before: quarter = 2 epochs)

| data | best rung (test) | pick (test) | gap | planner / every rung | / best rung | |
|---|---|---|---|---|---|---|
| rt64 seed 2, the hold, quiet | contrastive 68.15% (24 s) | contrastive 67.95% | +0.20 | 31 s / 43 s = 72% | 1.28x | PASS (1.28x <= 1.5x; 72% > 40%) |
| rt64 seed 2, the hold | contrastive 68.15% (30 s) | contrastive 67.95% | +0.20 | 34 s / 49 s = 71% | 1.16x | PASS (1.16x <= 1.5x; 71% > 40%) |
| rt64 seed 0, the hold | contrastive 72.50% (31 s) | contrastive 72.85% | -0.35 | 35 s / 52 s = 68% | 1.14x | PASS (1.14x <= 1.5x; 68% > 40%) |
| rt64 seed 1, the hold | contrastive 70.70% (41 s) | contrastive 71.65% | -0.95 | 47 s / 65 s = 74% | 1.15x | PASS (1.15x <= 1.5x; 74% > 40%) |
| rt500, the hold | full_ft 77.70% (177 s) | full_ft 77.70% | 0.00 | 203 s / 195 s = 104% | 1.15x | PASS (<= 1.5x) |
| rt64 seed 1, z_default 1.96 | contrastive 70.70% (35 s) | contrastive 71.65% | -0.95 | 47 s / 57 s = 83% | 1.36x | FAIL (83% > 40%; 1.36x <= 1.5x) |
| rt64 seed 0, z_default 1.96 | contrastive 72.50% (35 s) | contrastive 72.85% | -0.35 | 40 s / 56 s = 72% | 1.15x | FAIL (72% > 40%; 1.15x <= 1.5x) |
| rt64 seed 2, z_default 1.96 | contrastive 68.15% (24 s) | contrastive 67.95% | +0.20 | 38 s / 41 s = 94% | 1.58x | FAIL (94% > 40%; 1.58x > 1.5x) |
| rt64 seed 1, z 1 (lead, not chrt, load ~5) | contrastive 70.70% (187 s) | linear_probe 67.40% | +3.30 | 48 s / 269 s = 18% | 0.25x | FAIL (gap) |
| rt64 (the tied default's quarter run continued) | contrastive 72.50% (33 s) | contrastive 72.85% | -0.35 | 40 s / 55 s = 73% | 1.22x | FAIL (73% > 40%; 1.22x <= 1.5x) |
| rt64 (lr 1e-4, quarter = 1 epoch) | contrastive 72.50% (24 s) | contrastive 72.50% | 0.00 | 36 s / 40 s = 92% | 1.54x | FAIL (92% > 40%; 1.54x > 1.5x) |
| rt64 (lr 5e-5) | contrastive 71.70% (36.0 s) | contrastive 71.70% | 0.00 | 56 s / 59 s = 95% | 1.56x | FAIL (95% > 40%; 1.56x > 1.5x) |
| rt64 before | contrastive 71.70% (28.5 s) | linear_probe 68.15% | +3.55 | 16 s / 46 s = 35% | 0.56x | FAIL (gap) |
| fmnist500 | mlp_head 87.15% (11.5 s) | linear_probe 86.40% | +0.75 | 200 s / 1408 s = 14% | 17.4x | PASS |
| rt500 | full_ft 77.70% (141.9 s) | full_ft 77.70% | 0.00 | 188 s / 153 s = 123% | 1.32x | PASS (<= 1.5x) |
| rt500 before | full_ft 77.70% (190.9 s) | full_ft 77.70% | 0.00 | 340 s / 208 s = 163% | 1.78x | FAIL (> 1.5x) |

The hold (first five rows, ``Ladder._default_holds``): where fit's default is a costly rung it runs at a
quarter budget right after every cheap rung's first fold (the held-out split), and a cheap rung that does not
overturn it there stops its cross-validation (their ranking decides nothing while the default stands; the
folds run before the pick if another rung overturns it, so the pick is the one every fold gives: a test
compares 108 scripted cases with and without it); a rung that could not overturn a kept default even if
right on every held-out example is not run (seed 0: full_ft, against contrastive's 12 of 13). The same
picks and test accuracies as the rows below on all four; the cheap rungs now cost their first fold (rt64
seed 2: 1.7 s for the five, instead of ~5-6 s). The timings of this run are ~2x those of the quiet rerun
below (load ~3 from two helpers on the other core; the ratios are within one run). rt500: the cheap rungs'
4 other folds were held too (full_ft at a quarter budget 76.0% on the 100 held-out), 1.15x (was 1.38x).
rt64 is judged on 1.5x the best rung, as rt500: fit's default there became contrastive tuning (issue 13),
whose own compute is 58-63% of every rung's, so no pick within 1 point of it can be at 40% of every
rung (the reason item 10 of issue 12 gives for rt500); the 40% verdict is still printed.
rt64 with z_default (the next three rows): another rung replaces fit's default (contrastive tuning) only
with a paired z >= 1.96 on the 13 held-out texts, not z >= 1 (``Ladder.overturns``; the level is the
conventional one, checked on 12 validation draws, seeds 100-111, 600 pool texts: 67.93% -> 69.78%,
overturned 4/12 -> 0/12). Seed 1: contrastive 8/13 at a quarter budget against the probe's 10/13 is a
paired z of 1.00, which used to overturn it (the probe, gap +3.30); now it is kept and its run continued:
71.65% (gap -0.95), planner 47 s = cheap-rung CV 7.3 s + contrastive's quarter 9.2 s + full_ft's quarter
3.5 s + the continuation 26 s + ~1 s. Seeds 0 and 2 take the path they took before (seed 0: a tie, 12 of
13 each; seed 2: contrastive 9/13 above the probe's 8/13). Seed 2 misses 1.5x (1.58x): its continuation
of 30 of the 40 steps took 23 s while the oracle's whole 40-step run took 24 s (seed 0: 23 s and 35 s),
timing noise of the size that decides that line. "<= 40% of every rung" fails on all three, as said below.
Seed 2 again on a quiet machine (the lead, 2026-12-04 00:24 UTC, chrt, load 0.5 before): same pick and
accuracy, but 27 s against the best rung's 15 s = **1.82x** (cheap-rung CV ~6 s + contrastive's quarter 4.7 s
+ full_ft's quarter 2.1 s + the continuation 14 s): where the best rung is this cheap, the ladder's other
rungs alone are half of it, so the restated 1.5x does not hold either; it is not timing noise.
The rows after these describe the earlier states.
rt64 before (the row "the tied default's quarter run continued"): the tied default's quarter-budget run (10 of 40 steps on the 51 fit texts)
continues for its 30 remaining steps on all 64 texts instead of training afresh (chosen on 600 pool
texts outside every training set, seeds 100-105: 69.08% against 68.72%): planner 40 s = the cheap
rungs' CV + contrastive at a quarter budget 8.0 s + full_ft's trial 2.7 s + the continuation 23 s,
against 33 s for contrastive run alone at full budget (1.22x). "<= 40% of every rung" cannot hold
here for the reason item 10 of issue 12 gives for rt500: the best rung alone is 60% of every rung's
compute (33 of 55 s), and the pick is that rung. The rows below describe the earlier states.
rt64 before that: fit's default for 64 texts (32 per class) is contrastive tuning, chosen on a 600-text
validation pool (``recipes.CONTRASTIVE_DEFAULT``); when the 13 held-out examples cannot tell it from
the probe (12 of 13 each at a quarter budget), it is kept, skips halving and trains once at full
budget on all 64 (35 s, the oracle's same run 36 s): the pick is the best rung (gap 0.00). Planner
56 s = cheap-rung CV 6.4 s (MLP head raced out after 3 of 5 folds) + contrastive at a quarter budget
8.3 s + full_ft at a quarter budget 5.7 s + contrastive on all 64 34.9 s + setup ~1 s. It fails
"<= 40% of every rung" (contrastive alone is 61% of it, 36 of 59 s) and, by 0.06x, the restated
"<= 1.5x the best rung's compute" (1.56x; the quarter-budget contrastive run and full_ft's trial
are the excess). That rt64 row was measured before the 1-epoch text quarter budget (commit d236ae7, full_ft's
quarter trial 2 of 5 epochs). Re-measured at main after the contrastive recipe moved to lr 1e-4
(benchmarks/few_shot.py) and the 1-epoch quarter (first row, chrt): planner 36 s = CV 6.9 s (probe 2.1,
TF-IDF 1.2, MLP head 3.5 for 3 of 5 folds) + contrastive at a quarter budget 6.2 s + full_ft's trial
2.3 s + contrastive on all 64 20 s (the oracle's same run 24 s: timing noise of this size decides
the 1.5x line). Before (the probe kept at the tie):
the only rung within 1 point of the best is the best itself (prototype 70.50% is 1.20 below),
and contrastive tuning alone is 62% of every rung's compute (28.5 of 46 s): no pick meets both
lines on this draw. The planner saw contrastive at a quarter budget tie the probe, 12 of 13 on the
held-out split (13 examples: one more right would be a paired z of 1); the probe's 5-fold CV
accuracy over the 64 was 82.8% against 68.15% on the test set. The margin is real, not test-set
noise: contrastive - probe +3.55 points, paired bootstrap 95% CI [+1.95, +5.10] on the 2000 test
texts (169/98 discordant; README few-shot table, seeds 0-2: +3.5/+2.8/+3.3; validation pool, seeds
100-102: +3.4), but at that discordance (13%) a paired z of 1 needs ~100 held-out examples, not 13.
Contrastive - prototype: +1.20 [-0.65, +2.95]. Seed 1 (``--seed 1``, load ~5.5, not chrt): the same
shape, contrastive best at 70.15% and 62% of every rung's compute (80.8 of 131 s), the only rung
within 1 point; the planner picked the probe (67.40%, gap +2.75) in 52 s = 40%; contrastive at a
quarter budget scored 8 of 13 held-out examples against the probe's 10. rt500 now (a text quarter budget is 1 of
5 epochs, ``recipes.fine_tuning``): CV of the cheap rungs 28.0 s, full_ft at a quarter budget (1 epoch on 400)
22.8 s, 76.00% on the 100 held-out (2 epochs: 77.00%; the probe's CV 67.4%: the same pick), then full_ft once
on all 500 135 s (the oracle's same run 142 s). rt500 before: CV of the cheap rungs 38 s,
full_ft at a quarter budget (2 of 5 epochs on 400) 63.5 s, then full_ft once on all 500 233 s
(the oracle's same run 191 s on the same machine: load); with the refit at the oracle's 191 s it
would be 1.56x. fmnist500 before the MLP race: the same pick in 119 s (8%, load ~6); the race
does not stop the MLP head there (84.0% CV against the probe's 84.2%).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.splits import (FMNIST_CLASSES, load_fmnist, load_rotten_tomatoes,  # noqa: E402
                               stratified_indices, text_train_indices)
from headstart.api import Headstart  # noqa: E402
from headstart.data.sources import from_sequences  # noqa: E402
from headstart.selection.planner import RUNGS, Ladder, default_ladder  # noqa: E402


# Datasets whose compute target is a multiple of the best rung's own compute, not 40% of every rung.
# rt64: fit's default there (contrastive tuning, the best rung) is 58-63% of every rung's compute, so 40% cannot
# hold for a pick within 1 point of it; the 40% verdict is printed beside it.
BEST_RUNG_TARGET = {"rt500": 1.5, "rt64": 1.5}


def stamps(n: int, seed: int, size: int = 12, k: int = 10, patt: int = 4) -> tuple[list, list]:
    """n images: uniform noise at half intensity, one of k fixed random binary patterns at a
    random position; the label is the pattern."""
    pats = np.random.RandomState(1234).randint(0, 2, (k, patt, patt)) * 255
    rng = np.random.RandomState(seed)
    y = np.arange(n) % k
    x = rng.uniform(0, 127.5, (n, size, size))
    for i in range(n):
        r, c = rng.randint(0, size - patt + 1, 2)
        x[i, r:r + patt, c:c + patt] = pats[y[i]]
    return list(x.round().astype(np.uint8)), [str(v) for v in y]


def load(name: str, seed: int):
    """(train LabeledData, test LabeledData, estimator base params)."""
    if name.startswith("fmnist"):
        n = int(name[6:])
        xtr, ytr, xte, yte = load_fmnist()
        idx = stratified_indices(ytr, n, seed)
        return (from_sequences(list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]], "image"),
                from_sequences(list(xte), [FMNIST_CLASSES[i] for i in yte], "image"),
                {"backbone": "efficientnet_lite0", "preprocessing": {"image_size": 112}})
    if name.startswith("rt"):
        n = int(name[2:])
        pool, pool_y, tx, ty = load_rotten_tomatoes()
        lab = {0: "rotten", 1: "fresh"}
        idx = text_train_indices(pool_y, n, seed)
        return (from_sequences([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx], "text"),
                from_sequences(tx, [lab[int(v)] for v in ty], "text"), {"backbone": "minilm"})
    if name == "stamps":
        return (from_sequences(*stamps(1000, seed), "image"), from_sequences(*stamps(1000, 10_000 + seed), "image"),
                {"backbone": "efficientnet_lite0"})
    if name == "digits":  # scikit-learn's 8x8 digits, 0..16 -> 0..255; 1000 train / 797 test
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        d = load_digits()
        x = (d.images * 255 / 16).round().astype(np.uint8)
        tr, te = train_test_split(np.arange(len(x)), train_size=1000, stratify=d.target, random_state=seed)
        return (from_sequences(list(x[tr]), [str(v) for v in d.target[tr]], "image"),
                from_sequences(list(x[te]), [str(v) for v in d.target[te]], "image"),
                {"backbone": "efficientnet_lite0"})
    raise ValueError(name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="stamps,digits,fmnist100,rt64,fmnist500,rt500")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--oracle-from", default=None,
                    help="reuse the every-rung results of an earlier --json (they do not depend on the planner)")
    a = ap.parse_args()
    saved = {}
    if a.oracle_from:
        saved = {r["dataset"]: r["oracle"] for r in json.loads(Path(a.oracle_from).read_text())}
    results = []
    for name in a.datasets.split(","):
        train, test, base = load(name, a.seed)
        base = {**base, "seed": a.seed}
        print(f"\n=== {name}: {len(train)} train, {len(test)} test", flush=True)
        ladder = default_ladder(train)[0]  # the rungs the planner itself would consider on these data
        oracle = {r: v for r, v in saved.get(name, {}).items() if r in ladder}
        if oracle:
            print(f"  every rung, full budget: from {a.oracle_from} (same code for the rungs, same machine)")
        with tempfile.TemporaryDirectory() as cache:
            p = Ladder({**base, "runtime": {"cache_dir": cache}}, log=None)
            for rung in [r for r in ladder if r not in oracle]:
                # compute = the fit alone (features, training); scoring the test set is not part of it
                params, fit = p._params(rung, train.modality, 1.0), RUNGS.get(rung).fit  # zero_shot fits itself
                est = fit(params, train) if fit else Headstart(**params).fit(train)
                correct = est.predict(test) == np.array(test.labels, dtype=object)
                oracle[rung] = {"test_accuracy": float(np.mean(correct)), "seconds": est.fit_seconds_}
            for rung, v in oracle.items():
                print(f"  every rung, full budget: {rung:<13} {100 * v['test_accuracy']:6.2f}%  "
                      f"{v['seconds']:6.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as cache:
            plan, est = Ladder({**base, "runtime": {"cache_dir": cache}}, log=print).run(train)
            acc = float(np.mean(est.predict(test) == np.array(test.labels, dtype=object)))
        print(plan.format())
        best = max(oracle, key=lambda r: oracle[r]["test_accuracy"])
        total = sum(v["seconds"] for v in oracle.values())
        gap = 100 * (oracle[best]["test_accuracy"] - acc)
        ratio, to_best = plan.seconds / total, plan.seconds / oracle[best]["seconds"]
        ok = gap <= 1.0 and (to_best <= BEST_RUNG_TARGET[name] if name in BEST_RUNG_TARGET else ratio <= 0.40)
        verdicts = f"gap <= 1: {gap <= 1.0}, <= 40% of every rung: {ratio <= 0.40}, <= 1.5x the best rung: {to_best <= 1.5}"
        line = (f"{name}: pick {plan.pick} {100 * acc:.2f}% vs best rung {best} "
                f"{100 * oracle[best]['test_accuracy']:.2f}% (gap {gap:+.2f} points); compute {plan.seconds:.0f} s "
                f"vs {total:.0f} s for every rung = {ratio:.0%}, {to_best:.2f}x the best rung's "
                f"{oracle[best]['seconds']:.0f} s ({verdicts}) -> {'PASS' if ok else 'FAIL'}")
        if name in ("digits", "stamps"):
            scratch_ok = plan.pick == "scratch" or acc >= oracle["scratch"]["test_accuracy"] - 0.01
            line += f"; scratch rung {100 * oracle['scratch']['test_accuracy']:.2f}%: {'PASS' if scratch_ok else 'FAIL'}"
        print(line, flush=True)
        results.append({"dataset": name, "oracle": oracle, "plan": plan.to_dict(), "pick_test_accuracy": acc,
                        "summary": line})
    print("\n" + "\n".join(r["summary"] for r in results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
