"""Helpers shared by the benchmark scripts: run a method over seeds, print mean ± std."""
from __future__ import annotations

import tempfile
import time
from typing import Any, Callable

import numpy as np


def run_seeds(name: str, seeds: list[int], one: Callable[[int, str], dict[str, Any]]) -> dict[str, Any]:
    """``one(seed, cache_dir)`` returns {"accuracy": ...}; each seed gets a cold feature cache so
    the times include every feature computation (train and test)."""
    accs, secs = [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            r = one(seed, cache)
            secs.append(time.perf_counter() - t0)
        accs.append(100 * r["accuracy"])
        print(f"  {name} seed {seed}: {accs[-1]:.2f}%  {secs[-1]:.1f} s", flush=True)
    return {"method": name, "accs": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
            "seconds": float(np.mean(secs))}


def row(r: dict[str, Any]) -> str:
    return f"{r['method']:<34} {r['mean']:6.2f} ± {r['std']:4.2f} [{len(r['accs'])}]  {r['seconds']:7.1f} s"


def ci(values: list[float], digits: int = 3) -> str:
    """``mean ± half-width`` of the 95% Student-t interval over seeds (headstart's ``mean_ci``)."""
    from headstart.evaluation.compare import mean_ci

    mean, low, high = mean_ci(values)
    return f"{mean:.{digits}f} ± {(high - low) / 2:.{digits}f}"
