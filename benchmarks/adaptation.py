"""Domain adaptation on a developers' shift (issue 14): Fashion-MNIST source (labeled, the anchors'
stratified training subset) -> the anchors' 2000 Fashion-MNIST test images under an appearance
shift (target labels used for evaluation only; the same images, unlabeled, are the target stream,
the usual transductive setting of adaptation benchmarks).

    python benchmarks/adaptation.py [--n 2000] [--seeds 0,1,2] [--shift heavy]
                                    [--methods source_fe,source_ft,dann,cdan,coral,mmd,entropy]

Shifts (fixed, seeded): ``invert`` = 255 - x; ``invert_blur`` = inverted, Gaussian blur sigma 1,
plus a fixed random texture (uniform noise blurred at sigma 2, amplitude 60) behind the item;
``heavy`` = the same with blur sigma 1.5 and texture amplitude 110;
``none`` = the clean test images (the source-domain accuracy).

Methods: ``source_fe`` = headstart's default for this size (a probe on cached features, source
only); ``adabn`` = the same, then the BatchNorm statistics re-estimated on the target (AdaBN); ``source_ft`` = fine-tuning on the source only, the same settings as the adaptation runs;
``dann``, ``cdan``, ``coral``, ``mmd``, ``entropy`` = the adaptation tasks, fine-tuning with the target
stream; ``feature_align`` = no backbone training: source and target cached features standardised
per domain, then the probe (``feature_align_st``: plus three self-training rounds). Feature extraction: EfficientNet-Lite0 at 112x112 (the
defaults); every fine-tune: EfficientNet-Lite0 at 64x64, ``--steps`` optimizer steps, batch 32.

Label-free selection: for each run the information-maximisation score of its target predictions
(mean entropy - entropy of the mean prediction; lower is better) and its accuracy on 1000 held-out
clean source images (never in a training subset); the script prints the method each criterion picks per seed beside the oracle
(best target accuracy), so the gap is visible.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import FMNIST_CLASSES, load_fmnist, stratified_indices  # noqa: E402
from headstart import Headstart  # noqa: E402
from headstart.evaluation.compare import mean_ci  # noqa: E402

METHODS = {"source_fe": {"strategy": "feature_extraction"},
           "adabn": {"strategy": "feature_extraction", "adapt": "adabn"},
           "feature_align": {"strategy": "feature_extraction", "adapt": "feature_align"},
           "feature_align_st": {"strategy": "feature_extraction", "adapt": "feature_align",
                                "task_params": {"self_training": 3}},
           "source_ft": {"strategy": "fine_tuning"},
           **{m: {"strategy": "fine_tuning", "task": m} for m in ("dann", "cdan", "coral", "mmd", "entropy")}}


def shift(x: np.ndarray, kind: str, seed: int = 2024) -> np.ndarray:
    """(N, 28, 28) uint8 -> the shifted images, uint8."""
    from scipy.ndimage import gaussian_filter

    if kind == "none":
        return x
    y = 255.0 - x.astype(np.float64)
    if kind in ("invert_blur", "heavy"):
        amp, blur = (60, 1.0) if kind == "invert_blur" else (110, 1.5)
        rng = np.random.RandomState(seed)
        texture = gaussian_filter(rng.uniform(-1, 1, size=(len(x), 28, 28)), sigma=(0, 2, 2))
        texture = amp * texture / np.abs(texture).max()
        item = x > 30  # the garment's own pixels keep their (inverted) values
        y = np.where(item, gaussian_filter(y, sigma=(0, blur, blur)), np.clip(y + texture - 40, 0, 255))
    elif kind != "invert":
        raise ValueError(f"unknown shift {kind!r}")
    return np.clip(y, 0, 255).astype(np.uint8)


def information_maximisation(proba: np.ndarray) -> float:
    p = np.clip(proba, 1e-8, 1)
    marginal = p.mean(0)
    return float(-(p * np.log(p)).sum(1).mean() + (marginal * np.log(marginal)).sum())


def one_run(method: str, seed: int, a: argparse.Namespace, data: dict) -> dict:
    params = METHODS[method]
    sp = {} if params["strategy"] == "feature_extraction" else {"steps": a.steps, "batch_size": 32}
    est = Headstart(backbone="efficientnet_lite0", seed=seed, verbose=False, test_size=0.0,
                    strategy_params=sp or None, preprocessing={"image_size": 64 if sp else 112},
                    runtime={"cache_dir": data["cache"]}, **{k: v for k, v in params.items() if k != "strategy"},
                    strategy=params["strategy"])
    idx = stratified_indices(data["ytr"], a.n, seed)
    t0 = time.perf_counter()
    est.fit(list(data["xtr"][idx]), [FMNIST_CLASSES[i] for i in data["ytr"][idx]],
            unlabeled=list(data["target"]) if ("task" in params or "adapt" in params) else None)
    secs = time.perf_counter() - t0
    target_acc = float(np.mean(est.predict(list(data["target"])) == data["yte_names"]))
    held = data["held"]  # clean source images outside every training subset: a label-free criterion
    clean_acc = float(np.mean(est.predict(list(data["xtr"][held])) == data["ytr_names"][held]))
    im = information_maximisation(est.predict_proba(list(data["target"])))
    return {"method": method, "seed": seed, "target": 100 * target_acc, "source": 100 * clean_acc, "im": im,
            "seconds": secs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--shift", default="heavy")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--cache", default=None, help="feature cache folder to reuse (default: a new temporary one)")
    a = ap.parse_args()
    xtr, ytr, xte, yte = load_fmnist()
    pool = set(np.concatenate([stratified_indices(ytr, a.n, s) for s in range(3)]).tolist())
    rest = np.array([i for i in range(len(ytr)) if i not in pool])
    data = {"xtr": xtr, "ytr": ytr, "target": shift(xte, a.shift),
            "held": np.random.RandomState(99).choice(rest, 1000, replace=False),
            "ytr_names": np.array([FMNIST_CLASSES[i] for i in ytr], dtype=object),
            "yte_names": np.array([FMNIST_CLASSES[i] for i in yte], dtype=object)}
    methods, seeds = a.methods.split(","), [int(s) for s in a.seeds.split(",")]
    runs = []
    data["cache"] = a.cache or tempfile.mkdtemp(prefix="hs-adapt-")  # one feature cache: a backbone's features are computed once
    for seed in seeds:
        for m in methods:
            runs.append(one_run(m, seed, a, data))
            r = runs[-1]
            print(f"  {m:<10} seed {seed}: target {r['target']:.2f}%  source {r['source']:.2f}%  "
                  f"IM {r['im']:+.3f}  {r['seconds']:.0f} s", flush=True)
    report(runs, methods, seeds, a)


def report(runs: list[dict], methods: list[str], seeds: list[int], a: argparse.Namespace) -> None:
    print(f"\nFashion-MNIST N={a.n} -> test images under shift '{a.shift}', {len(seeds)} seeds "
          "(mean, 95% t-interval)")
    print(f"{'method':<10} {'target acc %':>24} {'held-out source acc %':>20} {'IM':>7} {'s/run':>6}")
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        t, lo, hi = mean_ci([r["target"] for r in rs])
        ci = "" if np.isnan(lo) else f" ({lo:.1f}..{hi:.1f})"
        print(f"{m:<10} {t:>10.2f}{ci:>14} {np.mean([r['source'] for r in rs]):>22.2f} "
              f"{np.mean([r['im'] for r in rs]):>+7.3f} {np.mean([r['seconds'] for r in rs]):>6.0f}")
    adapted = [m for m in methods if m != "source_fe"] + ["source_fe"] * ("source_fe" in methods)
    for seed in seeds:
        rs = {r["method"]: r for r in runs if r["seed"] == seed and r["method"] in adapted}
        if not rs:
            continue
        oracle = max(rs.values(), key=lambda r: r["target"])
        by_im = min(rs.values(), key=lambda r: r["im"])
        by_src = max(rs.values(), key=lambda r: r["source"])
        print(f"seed {seed}: oracle {oracle['method']} {oracle['target']:.2f}; label-free IM picks "
              f"{by_im['method']} {by_im['target']:.2f}; source accuracy picks {by_src['method']} "
              f"{by_src['target']:.2f}")


if __name__ == "__main__":
    main()
