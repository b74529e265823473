"""Shift detection on real images with EfficientNet-Lite0 features: no shift, and appearance
shifts of several strengths.

    python benchmarks/shift.py [--n 1000] [--permutations 1000] [--null-splits 10] [--cache-dir DIR]

Source: a stratified Fashion-MNIST training subset of N. Targets (N each): another disjoint
training subset and the test images (no shift expected), then the test images inverted, rotated
by 90 and by 10 degrees, blurred, with Gaussian noise; and scikit-learn's 8x8 digits, one random
half against the other half clean and noisy. Prints, per target, the domain classifier's
accuracy, the proxy A-distance, MMD², the p-value, the verdict and the seconds (features
included; the source's are computed once and then read from the cache), and beside them what
the shift costs: a logistic-regression probe trained on the labeled source features, its
accuracy on the source's own held-out images and on the target (target labels used for this
column only). ``--null-splits K``
also runs the test on K random halves of 2N training images (features cached): how often it
calls a shift where there is none (level 0.05).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.splits import load_fmnist, stratified_indices  # noqa: E402
from headstart.adaptation.detect import detect_shift, domain_features  # noqa: E402
from headstart.adaptation.shift import shift_test  # noqa: E402
from headstart.data.sources import from_sequences  # noqa: E402


def _pil(f: Callable[[Image.Image], Image.Image]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: np.asarray(f(Image.fromarray(a)))


def _noise(sd: float, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda a: np.clip(a + rng.normal(0, sd, a.shape), 0, 255).astype(np.uint8)


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "test set, unchanged": lambda a: a,
    "inverted": lambda a: 255 - a,
    "rotated 90°": lambda a: np.rot90(a).copy(),
    "rotated 10°": _pil(lambda im: im.rotate(10, resample=Image.BILINEAR)),
    "blurred (Gaussian, radius 1)": _pil(lambda im: im.filter(ImageFilter.GaussianBlur(1))),
    "Gaussian noise, sd 25": _noise(25, 0),
}


def _probe(source: list[np.ndarray], ys: np.ndarray, target: list[np.ndarray], yt: np.ndarray, cache: str) -> float:
    """Accuracy on the target of a probe fitted on the source features (both read from the cache)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs, ft, _ = domain_features(from_sequences(source, None, "image"), from_sequences(target, None, "image"),
                                "efficientnet_lite0", cache_dir=cache)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)).fit(fs, ys)
    return float((clf.predict(ft) == yt).mean())


def _row(name: str, source: tuple[list[np.ndarray], np.ndarray], target: tuple[list[np.ndarray], np.ndarray],
         cache: str, perms: int) -> None:
    t0 = time.perf_counter()
    r = detect_shift(source[0], target[0], backbone="efficientnet_lite0", permutations=perms, cache_dir=cache,
                     max_samples=None, log=None)
    secs = time.perf_counter() - t0
    acc = _probe(*source, *target, cache)
    print(f"{name:<34} {100 * r.domain_accuracy:6.1f}%  {r.proxy_a_distance:5.2f}  {r.mmd2:9.4g}  "
          f"{r.p_value:7.4f}  {secs:6.1f} s  {100 * acc:6.1f}%  {r.verdict.split(':')[0]}", flush=True)


def _null_rate(pool: list[np.ndarray], splits: int, cache: str, perms: int) -> None:
    data = from_sequences(pool, None, "image")
    t0 = time.perf_counter()
    feats, _, _ = domain_features(data, data.subset([0, 1]), "efficientnet_lite0", cache_dir=cache)
    t1 = time.perf_counter()
    ps = []
    for k in range(splits):
        order = np.random.default_rng(100 + k).permutation(len(feats))
        half = len(feats) // 2
        ps.append(shift_test(feats[order[:half]], feats[order[half:]], permutations=perms, seed=k,
                             max_samples=None).p_value)
    print(f"null: {splits} random halves of {len(pool)} training images: {sum(p < 0.05 for p in ps)} called "
          f"a shift at level 0.05 (p-values {', '.join(f'{p:.2f}' for p in ps)}); features {t1 - t0:.1f} s, "
          f"tests {(time.perf_counter() - t1) / splits:.1f} s each", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--null-splits", type=int, default=0)
    ap.add_argument("--cache-dir", default=None, help="feature cache to keep between runs (default: a temporary one)")
    a = ap.parse_args()
    xtr, ytr, xte, yte = load_fmnist(test_size=None)
    idx = stratified_indices(ytr, 3 * a.n, 0)  # source, another train subset, the source's held-out images
    source, other, held = ((list(xtr[i]), ytr[i]) for i in (idx[:a.n], idx[a.n:2 * a.n], idx[2 * a.n:]))
    pick = np.random.default_rng(0).choice(len(xte), a.n, replace=False)
    test, ytest = list(xte[pick]), yte[pick]
    print(f"{'target (source: Fashion-MNIST train)':<34} {'domain':>7}  {'PAD':>5}  {'MMD²':>9}  {'p':>7}  "
          f"{'time':>8}  {'probe':>7}  verdict")
    with tempfile.TemporaryDirectory() as tmp:
        cache = a.cache_dir or tmp
        _probe_row = f"{'source held-out (probe accuracy)':<34} {'':>7}  {'':>5}  {'':>9}  {'':>7}  {'':>8}  "
        print(_probe_row + f"{100 * _probe(*source, *held, cache):6.1f}%", flush=True)
        _row("train, another subset", source, other, cache, a.permutations)
        for name, f in SHIFTS.items():
            _row(name, source, ([f(x) for x in test], ytest), cache, a.permutations)
        from sklearn.datasets import load_digits

        d = load_digits()
        digits, yd = list((d.images * 16).clip(0, 255).astype(np.uint8)), d.target
        order = np.random.default_rng(0).permutation(len(digits))
        a_idx, b_idx = order[: len(order) // 2], order[len(order) // 2:]
        d_src = ([digits[i] for i in a_idx], yd[a_idx])
        d_tgt = [digits[i] for i in b_idx]
        _row("digits: other half", d_src, (d_tgt, yd[b_idx]), cache, a.permutations)
        _row("digits: other half, noise sd 25", d_src, ([_noise(25, 1)(x) for x in d_tgt], yd[b_idx]), cache,
             a.permutations)
        if a.null_splits:
            _null_rate(source[0] + other[0], a.null_splits, cache, a.permutations)


if __name__ == "__main__":
    main()
