"""Batch prediction at scale (issue 17): ``headstart predict BUNDLE DIR --out preds.csv`` over
20,000 image files, run through the CLI as a user runs it.

    python benchmarks/batch_predict.py [--n 20000] [--small 2000]

- peak memory flat: max RSS of the whole run (the predict process and its loader workers) at
  --n inputs over the same at --small inputs (goal <= 1.2x);
- killed midway (SIGKILL at about half) and resumed with --resume: the output file equal, byte
  for byte, to the uninterrupted run's;
- throughput in images/s.
Images are Fashion-MNIST PNGs (train then test set; the synthetic stand-in of speed.py when the
Debian package is missing); the bundle is the image defaults fitted on 200 of them.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); sys.exit(r.returncode)")


def _write(root: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    try:
        from benchmarks.splits import load_fmnist
        xtr, _, xte, _ = load_fmnist(test_size=None)
        x = np.concatenate([xtr, xte])
    except FileNotFoundError:
        x = np.random.RandomState(0).randint(0, 255, (n, 28, 28), dtype=np.uint8)
    d = root / f"images{n}"
    for i in range(n):
        sub = d / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i % len(x)]).save(sub / f"{i:06d}.png")
    return d


def _predict(bundle: Path, src: Path, out: Path, *extra: str) -> tuple[int, float]:
    """(max RSS in MiB, seconds) of one `headstart predict` run."""
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "headstart.cli", "predict", str(bundle), str(src),
           "--out", str(out), "--quiet", *extra]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return int(res.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--small", type=int, default=2000)
    args = ap.parse_args()

    import headstart
    from benchmarks.serve_load import _write_images

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train, _ = _write_images(root, 200, 1)
        bundle = root / "bundle"
        headstart.Headstart(verbose=False, run={"out": bundle}).fit(train)
        big, small = _write(root, args.n), _write(root, args.small)
        rss_small, s_small = _predict(bundle, small, root / "small.csv")
        rss_big, s_big = _predict(bundle, big, root / "big.csv")
        out = root / "resumed.csv"
        proc = subprocess.Popen([sys.executable, "-m", "headstart.cli", "predict", str(bundle), str(big), "--out",
                                 str(out), "--quiet"], stderr=subprocess.DEVNULL)
        progress = root / "resumed.csv.progress"
        while proc.poll() is None:
            if progress.exists() and json.loads(progress.read_text() or '{"rows": 0}')["rows"] >= args.n // 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait()
        killed_at = json.loads(progress.read_text())["rows"]
        _predict(bundle, big, out, "--resume")
        same = out.read_bytes() == (root / "big.csv").read_bytes()
        rows = sum(1 for _ in open(root / "big.csv", encoding="utf-8")) - 1
    print(f"{args.small} images: max RSS {rss_small} MiB, {s_small:.0f} s ({args.small / s_small:.0f} images/s incl. start)")
    print(f"{args.n} images: max RSS {rss_big} MiB, {s_big:.0f} s ({args.n / s_big:.0f} images/s incl. start), "
          f"{rows} rows")
    print(f"peak memory {args.n} / {args.small}: {rss_big / rss_small:.2f}x (goal <= 1.2x)")
    print(f"killed with SIGKILL after {killed_at} of {args.n} rows, resumed: output "
          f"{'IDENTICAL to' if same else 'DIFFERENT from'} the uninterrupted run's")


if __name__ == "__main__":
    main()
