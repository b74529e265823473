"""Pretrain ``ts:fcn`` (alias ``ts_fcn``) on source series, following Fawaz et al. 2018
("Transfer learning for time series classification"): supervised training on source data sets,
then the convolutional body transfers and the heads are dropped.

Source sets: the UCR/UEA sets that sktime ships (offline), train and test splits, EXCEPT the
three this project measures transfer on (GunPoint, ArrowHead, OSULeaf — ``TARGETS``): a target
is never among the sources. Each channel of a multivariate set is one univariate training
series with its series' label. One linear head per source set (multi-source, Fawaz's single
source generalised): each step draws a set uniformly, a batch of its series, a random crop of at
most ``crop`` steps (crops are the augmentation; the network is convolutional, lengths do not
matter at use), and the loss is that set's cross-entropy.

The weights are not shipped: built on first use (``pretrained_fcn``) and cached under
``~/.cache/headstart/weights/`` (the file name carries a hash of the recipe). Needs sktime for
the source data (``pip install headstart[timeseries]``); ``python -m headstart.backbones.ts_pretrain``
builds them ahead of time and prints the time taken.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart._files import cache_root
from headstart.backbones._base import Backbone
from headstart.backbones.timeseries import ARCHS, PRETRAINED, SeriesFCN
from headstart.data.timeseries import series_batch, series_items

SOURCE_SETS = ("ACSF1", "BasicMotions", "ItalyPowerDemand", "JapaneseVowels", "PLAID", "UnitTest")
TARGETS = ("GunPoint", "ArrowHead", "OSULeaf")  # never sources: the benchmark's targets
RECIPE = {"arch": "fcn", "sources": SOURCE_SETS, "steps": 1500, "batch_size": 32, "crop": 160, "lr": 1e-3,
          "weight_decay": 1e-4, "seed": 0}
log = logging.getLogger("headstart")


def recipe_hash(recipe: dict = RECIPE) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def weights_path(recipe: dict = RECIPE) -> Path:
    return cache_root() / "weights" / f"ts_fcn-{recipe_hash(recipe)}.safetensors"


def sktime_set(name: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """(series (C, T) list, labels) of a UCR/UEA set bundled with sktime (read offline)."""
    try:
        import sktime.datasets as skd
        from sktime.datasets import load_from_tsfile
    except ImportError:
        raise ImportError("the time-series sources ship with sktime: pip install 'headstart[timeseries]' "
                          "(or pip install sktime)") from None
    path = Path(skd.__file__).parent / "data" / name / f"{name}_{split.upper()}.ts"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sktime does not bundle {name!r} here")
    x, y = load_from_tsfile(str(path), return_data_type="nested_univ")
    return series_items(x), np.asarray(y)


def source_series(sets: tuple[str, ...] = SOURCE_SETS) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Per source set: univariate series (each channel one) and class indices."""
    if set(sets) & set(TARGETS):
        raise ValueError(f"source sets {sorted(set(sets) & set(TARGETS))} are benchmark targets")
    out = []
    for name in sets:
        series, labels = [], []
        for split in ("train", "test"):
            xs, ys = sktime_set(name, split)
            for x, lab in zip(xs, ys):
                series += [row[None] for row in x]
                labels += [lab] * len(x)
        _, idx = np.unique(np.asarray(labels).astype(str), return_inverse=True)
        out.append((series, idx))
    return out


def _crop_batch(series: list[np.ndarray], labels: np.ndarray, rng: np.random.Generator, batch_size: int,
                crop: int) -> dict:
    pick = rng.integers(0, len(series), batch_size)
    pairs = []
    for i in pick:
        s = series[i]
        start = int(rng.integers(0, s.shape[1] - crop + 1)) if s.shape[1] > crop else 0
        pairs.append((s[:, start:start + crop], int(labels[i])))
    return series_batch(pairs)


def pretrain(recipe: dict = RECIPE, data: list | None = None) -> SeriesFCN:
    """Train the FCN body on the source sets (one head per set); returns the body."""
    torch.manual_seed(recipe["seed"])
    rng = np.random.default_rng(recipe["seed"])
    data = source_series(tuple(recipe["sources"])) if data is None else data
    body = SeriesFCN(ARCHS[recipe["arch"]], spec=f"ts:{recipe['arch']}", arch=recipe["arch"])
    heads = nn.ModuleList(nn.Linear(body.num_features, int(y.max()) + 1) for _, y in data)
    params = list(body.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=recipe["steps"])
    body.train()
    for step in range(recipe["steps"]):
        k = int(rng.integers(0, len(data)))
        batch = _crop_batch(*data[k], rng, recipe["batch_size"], recipe["crop"])
        loss = nn.functional.cross_entropy(heads[k](body(batch["inputs"])), batch["targets"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            log.info("ts_fcn pretraining step %d/%d: loss %.3f", step, recipe["steps"], loss.item())
    return body.eval()


def pretrained_fcn(recipe: dict = RECIPE) -> SeriesFCN:
    """``ts:fcn`` with headstart's pretrained weights: from the cache, else trained once now."""
    from safetensors.torch import load_model, save_model

    path = weights_path(recipe)
    body = SeriesFCN(ARCHS[recipe["arch"]], spec=f"ts:{recipe['arch']}", arch=recipe["arch"],
                     license="apache-2.0 (trained by headstart on sktime-bundled UCR/UEA sets)")
    if not path.is_file():
        t0, threads = time.perf_counter(), torch.get_num_threads()
        log.warning("ts_fcn: building the pretrained weights once (%d steps on %s) ...",
                    recipe["steps"], ", ".join(recipe["sources"]))
        # small convolutions: one thread beats several (20 steps on 2 busy cores: 2.0 s vs 17.9 s)
        torch.set_num_threads(1)
        try:
            trained = pretrain(recipe)
        finally:
            torch.set_num_threads(threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{time.time_ns()}")
        save_model(trained, str(tmp))
        tmp.replace(path)
        log.warning("ts_fcn: weights built in %.0f s and cached at %s", time.perf_counter() - t0, path)
    load_model(body, str(path))
    return body.eval()


def build(name: str, pretrained: bool = True) -> Backbone:
    """The ``ts:`` source: ``ts:fcn`` (pretrained by headstart: built once and cached on first use)
    or ``ts:fcn_tiny`` (random, for tests)."""
    if name not in ARCHS:
        raise KeyError(f"unknown time-series backbone {name!r}; known: {', '.join(ARCHS)}")
    if pretrained and name in PRETRAINED:
        return pretrained_fcn()
    return SeriesFCN(ARCHS[name], spec=f"ts:{name}", arch=name)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t = time.perf_counter()
    bb = pretrained_fcn()
    print(f"ts_fcn ready at {weights_path()} ({weights_path().stat().st_size / 1e3:.0f} kB, "
          f"{sum(p.numel() for p in bb.parameters())} parameters) in {time.perf_counter() - t:.0f} s")
