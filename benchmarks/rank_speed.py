"""`headstart rank` wall time (issue 5): 3 image backbones on 2000 Fashion-MNIST images written as
PNG files, through the CLI in a fresh process: cold caches; then the same question again (answered from the
rank memo); then again with --no-memo (the full ranking on warm feature and score caches).

    python benchmarks/rank_speed.py [--backbones efficientnet_lite0,efficientnet_lite1,efficientnet_lite2]

Targets: cold under 180 s on 2 cores; the second call reuses the cache, under 10 s.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from benchmarks.splits import FMNIST_CLASSES, load_fmnist, stratified_indices  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2")
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    xtr, ytr, _, _ = load_fmnist()
    idx = stratified_indices(ytr, a.n, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for k, i in enumerate(idx):
            d = root / FMNIST_CLASSES[ytr[i]]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(xtr[i]).save(d / f"{k:05d}.png")
        env = {**os.environ, "HEADSTART_CACHE": str(Path(tmp) / "cache")}
        cmd = [sys.executable, "-m", "headstart.cli", "rank", str(root), "--backbones", a.backbones]
        times = []
        for call, extra in (("cold", []), ("warm (memo)", []), ("warm --no-memo (caches)", ["--no-memo"])):
            t0 = time.perf_counter()
            out = subprocess.run(cmd + extra, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            print(f"--- {call} call: {times[-1]:.1f} s (exit {out.returncode})\n{out.stdout}", flush=True)
            if out.returncode:
                print(out.stderr[-3000:])
                raise SystemExit(1)
    print(f"cold {times[0]:.1f} s (target < 180 s: {'PASS' if times[0] < 180 else 'FAIL'}); "
          f"warm {times[1]:.1f} s (target < 10 s: {'PASS' if times[1] < 10 else 'FAIL'}); "
          f"cold/warm {times[0] / times[1]:.1f}x; warm without the memo {times[2]:.1f} s")


if __name__ == "__main__":
    main()
