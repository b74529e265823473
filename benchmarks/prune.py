"""Structured pruning of a fine-tuned image model (issue 15, build item 3): >= 50% fewer FLOPs,
within 2 points after recovery.

    python benchmarks/prune.py [--n 500] [--seeds 0] [--flops-reduction 0.5] [--steps pruned,fp16,int8] [--work DIR]
                               [--recover-steps 100] [--final-recover-steps N] [--distill] [--unlabeled 2000]
                               [--layer-decay 0.7] [--lr 1e-4] [--alpha 0.5]
                               [--temperature 2] [--keep PATTERNS] [--importance l2] [--recalibrate 0] [--validate]

Per seed: fine-tune EfficientNet-Lite0 (offline ImageNet weights, 112 px, fine_tuning strategy)
on N stratified Fashion-MNIST training images (the teacher bundle), then ``headstart compress``
on the anchors' 2000-image test set: channel pruning with Torch-Pruning to the FLOPs target in
3 rounds, each followed by a recovery fine-tune on the same N images (and whatever other steps
are asked). ``--distill``: the recovery learns the unpruned teacher's softened outputs as well as
the labels, on the N images and on ``--unlabeled`` other images of the Fashion-MNIST training pool
(labels dropped; disjoint from the N). One extra row prunes the same way with no recovery, to show
what recovery buys.
``--keep``: backbone layers left whole with every channel group coupled to them (for
EfficientNet-Lite0 ``model.conv_stem,model.blocks.0.*,*.conv_pwl``: the stem, the first block and
the projections feeding the residual sums, so only the inverted bottlenecks' hidden width is cut);
``--recalibrate K``: BatchNorm statistics re-estimated on K images before each recovery.
``--validate``: measure on 1000 pool images outside the N and the transfer sets (choose settings
there, never on the test set).
Printed per seed: accuracy with its 95% interval, FLOPs, parameters, size, CPU latency per item
at batch 1 and 32, against the teacher. The machine load is printed with the timings.

Measured 2026-12-03, seed 0 (teacher refit that day: 84.40% test, 83.8% validation; shared
2-core CPU, 1 thread, load 2-12), with scratch scripts making the same ``prune_bundle`` calls as
the ``pruned`` step (settings chosen on validation, then measured once on the test set).

**Target met** with a long final recovery (best on validation, then measured once on test):

    python benchmarks/prune.py --steps pruned --work DIR --distill --unlabeled 10000 --recover-steps 150 \\
        --final-recover-steps 2000 --lr 3e-4 --recalibrate 500

- 51.1% fewer FLOPs (211.4 -> 103.2 MFLOPs per image), 3.38 -> 1.68 M parameters, 3 rounds
  (uniform cut, BatchNorm recalibrated on 500 images before each recovery).
- Recovery: 150, 150, then 2000 steps at lr 3e-4 (cosine), distillation on the 500 labels +
  10,000 transfer images (teacher logits computed once). Validation along the final 2000-step
  round: 80.3% at step 500, 82.7% at 1000, 83.5% at 1500, 83.5% at 2000 (teacher 83.8%; the
  3 x 150 recovery below: 76.1%; the mid-round points are taken before the cosine schedule has
  decayed, so they are not what a shorter final round would give). **84.40% test** (95% interval 82.7-85.9), the teacher's
  84.40%: 0.00 points lost (the bar: >= 82.40%). 50 min at load 2.4-6.6 (1 thread, nice 10;
  the final round 37 min); teacher logits taken from the cache.
- Plain recovery at the same long budget (no --distill: the 500 labels only, same rounds, lr and
  recalibration): validation 80.5 / 80.8 / 81.9 / 82.2% at steps 500 / 1000 / 1500 / 2000 of
  the final round (125 epochs of the 500 labels; before --final-recover-steps a recovery was
  capped at 60 epochs, 960 steps here). Distillation was better (83.5%), so plain recovery was
  not measured on test. 30 min at load 1-3.

Earlier, short recovery (3 x 150 steps, each transfer image seen about once): NOT met.

- Before recovery (validation): 9.3% (chance); with ``--keep 'model.conv_stem,model.blocks.0.*,*.conv_pwl'``
  (only the inverted bottlenecks' hidden width cut, 51.3% fewer FLOPs) 13.2% with
  recalibration, 12.3% without: recalibration alone does not rescue a 50% cut.
- After recovery (3 x 150 steps at lr 3e-4, distillation on the 500 + 10,000 transfer images,
  teacher logits computed once): uniform (no --keep) 76.1% validation, 78.90% test (10 min
  at load 2-4): 5.5 points below the teacher. With --keep (hidden width only): 73.4%
  validation, 75.10% test (measured on test before the uniform run existed; 22 min at load 4-12,
  9 of them the teacher's logits). Plain fine-tune recovery on the 500 labels instead of
  distillation (uniform, recalibrated, same steps): 76.2% validation, no better or worse at this
  step budget; measured before on another teacher (85.00%): 79.65% test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.quantize import load_task, uptime  # noqa: E402
from benchmarks.splits import FMNIST_CLASSES, load_fmnist, stratified_indices  # noqa: E402
from headstart import Headstart  # noqa: E402
from headstart.compression.compress import compress  # noqa: E402
from headstart.compression.prune import prune_bundle  # noqa: E402
from headstart.data._base import LabeledData  # noqa: E402


VALIDATION = 1000  # pool images held out for choosing settings (never the anchors' test set)


def _pool(n: int, seed: int) -> np.ndarray:
    """The Fashion-MNIST training images outside the N labeled ones, in a seeded order: the first
    VALIDATION are the validation split, the transfer sets come after them (nested by size)."""
    _, ytr, _, _ = load_fmnist()
    rest = np.setdiff1d(np.arange(len(ytr)), stratified_indices(ytr, n, seed))
    return np.random.default_rng(1000 + seed).permutation(rest)


def transfer_set(n: int, seed: int, size: int) -> LabeledData:
    """``size`` Fashion-MNIST training images outside the N labeled ones and the validation split, labels dropped."""
    xtr, _, _, _ = load_fmnist()
    pick = _pool(n, seed)[VALIDATION:VALIDATION + size]
    return LabeledData(list(xtr[pick]), None, "image")


def validation_set(n: int, seed: int) -> LabeledData:
    """VALIDATION labeled pool images outside the N and every transfer set: settings are chosen on these."""
    xtr, ytr, _, _ = load_fmnist()
    pick = _pool(n, seed)[:VALIDATION]
    return LabeledData(list(xtr[pick]), [FMNIST_CLASSES[i] for i in ytr[pick]], "image")


def one_seed(seed: int, a: argparse.Namespace, work: Path) -> dict:
    train, test, backbone, params = load_task("image", a.n, seed)
    if a.validate:  # choosing settings: measure on pool images outside the N and the transfer set, never the test set
        test = validation_set(a.n, seed)
    t0 = time.perf_counter()
    bundle = work / f"teacher-{seed}"
    if (bundle / "headstart.json").is_file():  # --work kept from an earlier run: the same teacher
        est = Headstart.load(bundle)
    else:
        est = Headstart(backbone=backbone, strategy="fine_tuning", strategy_params={"steps": a.fit_steps}, seed=seed,
                        verbose=False, runtime={"cache_dir": str(work / "cache")}, **params)
        est.fit(train.items, train.labels, test=(test.items, test.labels))
        est.save(bundle)
    print(f"[seed {seed}] teacher: fine-tuned {backbone} on N={a.n} ({time.perf_counter() - t0:.0f} s), test "
          f"accuracy {100 * est.metrics_['test']['accuracy']:.2f}% ({uptime()})", flush=True)
    keep = [k for k in a.keep.split(",") if k]
    options = {"flops_reduction": a.flops_reduction, "prune_steps": a.prune_steps, "recover_steps": a.recover_steps,
               "final_recover_steps": a.final_recover_steps,
               "lr": a.lr, "layer_decay": a.layer_decay, "distill": a.distill, "alpha": a.alpha,
               "temperature": a.temperature, "keep": keep, "importance": a.importance, "cache_dir": work / "cache",
               "recalibrate": a.recalibrate,
               "unlabeled": transfer_set(a.n, seed, a.unlabeled) if a.unlabeled else None}
    t0 = time.perf_counter()
    no_rec = prune_bundle(bundle, train, work / f"norecovery-{seed}", "channels", a.flops_reduction, a.prune_steps, 0,
                          evaluate=test, keep=keep, importance=a.importance, cache_dir=work / "cache",
                          recalibrate=a.recalibrate)
    acc0 = json.loads((no_rec / "headstart.json").read_text())["metrics"]["test"]["accuracy"]
    print(f"[seed {seed}] pruned with no recovery: {100 * acc0:.2f}% ({time.perf_counter() - t0:.0f} s)", flush=True)
    t0 = time.perf_counter()
    summary = compress(bundle, test, work / f"compress-{seed}", a.steps.split(","), "latency", train,
                       options=options)
    print(f"[seed {seed}] compress {a.steps} in {time.perf_counter() - t0:.0f} s ({uptime()})", flush=True)
    step = json.loads((work / f"compress-{seed}" / "pruned" / "headstart.json").read_text())["compression"]["steps"][-1]
    print(f"[seed {seed}] FLOPs per image {step['flops_before'] / 1e6:.1f} M -> {step['flops_after'] / 1e6:.1f} M "
          f"({100 * step['flops_reduction']:.1f}% fewer); parameters {step['parameters_before'] / 1e6:.2f} M -> "
          f"{step['parameters_after'] / 1e6:.2f} M", flush=True)
    res = {r["name"]: r for r in summary["results"]}
    return {"teacher": res["original"]["accuracy"], "pruned": res["pruned"]["accuracy"], "no_recovery": acc0,
            "flops_reduction": step["flops_reduction"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--fit-steps", type=int, default=300, help="optimizer steps of the teacher's fine-tune")
    ap.add_argument("--flops-reduction", type=float, default=0.5)
    ap.add_argument("--prune-steps", type=int, default=3)
    ap.add_argument("--recover-steps", type=int, default=100, help="optimizer steps per recovery fine-tune")
    ap.add_argument("--final-recover-steps", type=int, default=None,
                    help="optimizer steps of the last round's recovery (default: --recover-steps)")
    ap.add_argument("--lr", type=float, default=1e-4, help="learning rate of the recovery fine-tunes")
    ap.add_argument("--layer-decay", type=float, default=0.7, help="per-layer-group lr decay of the recovery")
    ap.add_argument("--distill", action="store_true", help="recover by distillation from the unpruned teacher")
    ap.add_argument("--unlabeled", type=int, default=0, help="with --distill: unlabeled transfer images")
    ap.add_argument("--alpha", type=float, default=0.5, help="with --distill: weight of the soft (teacher) term")
    ap.add_argument("--temperature", type=float, default=2.0, help="with --distill: softmax temperature")
    ap.add_argument("--keep", default="", help="comma-separated name patterns of backbone layers left whole")
    ap.add_argument("--importance", default="l2", help="channel ranking: l2 | l1 | bn_scale")
    ap.add_argument("--recalibrate", type=int, default=0,
                    help="images (the N, then the transfer set) re-estimating BatchNorm statistics each round")
    ap.add_argument("--validate", action="store_true",
                    help=f"measure on {VALIDATION} pool images outside the N and the transfer set, not the test set")
    ap.add_argument("--steps", default="pruned,fp16,int8", help="compress steps (pruned must be one)")
    ap.add_argument("--work", default=None, help="keep the bundles here (a teacher found there is reused)")
    a = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {uptime()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="headstart-prune-") as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for seed in [int(s) for s in a.seeds.split(",")]:
            rows.append(one_seed(seed, a, work))
    drop = [100 * (r["teacher"] - r["pruned"]) for r in rows]
    print(f"\nsummary over {len(rows)} seed(s): teacher {np.mean([100 * r['teacher'] for r in rows]):.2f}%, pruned "
          f"{np.mean([100 * r['pruned'] for r in rows]):.2f}% (drop {np.mean(drop):.2f} ± {np.std(drop):.2f} points), "
          f"no recovery {np.mean([100 * r['no_recovery'] for r in rows]):.2f}%, FLOPs "
          f"{100 * np.mean([r['flops_reduction'] for r in rows]):.1f}% fewer; target >= 50% fewer within 2 points: "
          + ("met" if all(d <= 2 for d in drop) and all(r["flops_reduction"] >= 0.5 for r in rows) else "NOT met"))


if __name__ == "__main__":
    main()
