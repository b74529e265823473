"""`headstart compare` at the issue's scale (issue 4): Fashion-MNIST and Rotten Tomatoes, training
sizes 100 and 500 (nested subsets of a 500-example stratified pool), 3 seeds, every method;
wall time of the whole comparison, the table, the verdicts, and report.html rendered in headless
Chromium.

    python benchmarks/compare.py [--datasets fmnist,rt] [--image-size 64] [--out /tmp/hs-compare]

Target: each comparison within 30 minutes on 2 cores; transfer ahead of scratch with
non-overlapping 95% intervals at 100 labels.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import (FMNIST_CLASSES, load_fmnist, load_rotten_tomatoes,  # noqa: E402
                               stratified_indices, text_train_indices)
from headstart.data.sources import from_sequences  # noqa: E402
from headstart.evaluation.compare import run_comparison  # noqa: E402
from headstart.evaluation.report import write_comparison_report  # noqa: E402


def render(path: Path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        return "chromium missing: not rendered"
    with tempfile.TemporaryDirectory() as ud:
        res = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={ud}",
                              "--window-size=1200,5000", "--enable-logging=stderr", "--v=0",
                              f"--screenshot={path.parent / 'screenshot.png'}", path.as_uri()],
                             capture_output=True, text=True, timeout=180)
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    m = [re.search(r"(\d+/\d+) plots rendered", line) for line in console]
    m = [x.group(1) for x in m if x]
    others = [line for line in console if "plots rendered" not in line]
    return f"{m[0] if m else '?'} plots rendered, {len(others)} other console message(s)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fmnist,rt")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="/tmp/hs-compare")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    for name in a.datasets.split(","):
        if name == "fmnist":
            xtr, ytr, xte, yte = load_fmnist()
            idx = stratified_indices(ytr, 500, 0)
            train = from_sequences(list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]], "image")
            test = from_sequences(list(xte), [FMNIST_CLASSES[i] for i in yte], "image")
            base = {"backbone": "efficientnet_lite0", "preprocessing": {"image_size": a.image_size}}
        else:
            pool, pool_y, tx, ty = load_rotten_tomatoes()
            lab = {0: "rotten", 1: "fresh"}
            idx = text_train_indices(pool_y, 500, 0)
            train = from_sequences([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx], "text")
            test = from_sequences(tx, [lab[int(v)] for v in ty], "text")
            base = {"backbone": "minilm"}
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            comp = run_comparison(train, test, {**base, "runtime": {"cache_dir": cache}}, sizes=[100, 500], seeds=seeds)
            secs = time.perf_counter() - t0
        out = Path(a.out) / name
        path = write_comparison_report(comp, test, out, title=f"headstart compare: {name}")
        print(f"\n=== {name}: {secs / 60:.1f} min (target 30): {'PASS' if secs <= 1800 else 'FAIL'}")
        print(comp.format())
        tr = max((r for r in comp.summary() if r["n"] == 100 and r["transfer"]), key=lambda r: r["accuracy"])
        sc = max((r for r in comp.summary() if r["n"] == 100 and not r["transfer"] and r["method"] != "majority"),
                 key=lambda r: r["accuracy"])
        print(f"at 100 labels: {tr['method']} {tr['ci_low']:.1f}..{tr['ci_high']:.1f} vs {sc['method']} "
              f"{sc['ci_low']:.1f}..{sc['ci_high']:.1f}: intervals "
              f"{'do not overlap (PASS)' if tr['ci_low'] > sc['ci_high'] else 'overlap (FAIL)'}")
        print(f"report {path}: {render(path)}", flush=True)


if __name__ == "__main__":
    main()
