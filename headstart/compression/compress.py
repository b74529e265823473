"""``headstart compress``: every compression step applied to one bundle, each measured against it.

Each step is a function registered in ``STEPS``: it gets a ``CompressRun`` (the source bundle,
the training and evaluation data, the options) and returns a ``Candidate`` (the folder it wrote
under ``DIR/<step>/`` and a runner: prepared batch -> logits). ``compress`` measures the source
and every candidate on the same prepared inputs (``headstart.compression.measure``), writes
``DIR/compress.json``, ``DIR/frontier.png`` (accuracy against latency) and ``DIR/report.html``,
and recommends one model for the ``target`` (accuracy | size | latency). A new step is one
function and one registration (see ``distilled`` below).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from headstart._registry import Registry
from headstart.api import Headstart, load
from headstart.compression.measure import (
    Inputs,
    Measurement,
    Runner,
    folder_size,
    measure_all,
    per_item_ms,
    prepare_inputs,
    torch_runner,
)
from headstart.compression.prune import count_parameters, prune_bundle, save_compressed
from headstart.data._base import LabeledData
from headstart.export.bundle import META
from headstart.export.card import model_card

TARGETS = ("accuracy", "size", "latency")
SOURCE = "original"


@dataclass
class CompressRun:
    bundle: Path
    data: LabeledData  # evaluation data (labeled)
    out: Path
    train: Any = None  # training data (path or LabeledData) for the steps that train
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Headstart:
        """A fresh copy of the source estimator (steps change the model they work on)."""
        return load(self.bundle, device="cpu")

    def require_train(self, step: str) -> Any:
        if self.train is None:
            raise ValueError(f"step {step!r} fine-tunes on the training data: give it (--train DATA)")
        return self.train


@dataclass
class Candidate:
    folder: Path
    run: Runner
    parameters: int
    size_bytes: int
    notes: str = ""
    inputs: Inputs | None = None  # its own prepared evaluation data (a student with another preprocessing)


STEPS: Registry[Callable[[CompressRun], Candidate]] = Registry("compress step")


def bundle_size(folder: Path) -> int:
    """Bytes of what a bundle needs to load: its listed files, headstart.json, backbone/, the card
    (not the run's checkpoints, logs or report)."""
    meta = json.loads((folder / META).read_text())
    names = [*meta.get("files", {}), META, "README.md"]
    return sum((folder / n).stat().st_size for n in names if (folder / n).is_file()) + (
        folder_size(folder / "backbone") if (folder / "backbone").is_dir() else 0)


def bundle_candidate(folder: Path, notes: str = "", data: LabeledData | None = None) -> Candidate:
    """A compressed headstart bundle, measured as ``load`` gives it back (proving it loads);
    ``data``: prepare the evaluation data with this bundle's own preprocessing (a student's)."""
    est = load(folder, device="cpu")
    return Candidate(folder, torch_runner(est.model_), count_parameters(est.model_), bundle_size(folder), notes,
                     prepare_inputs(est, data) if data is not None else None)


def _half(run: CompressRun, dtype: torch.dtype, name: str) -> Candidate:
    est = run.load()
    singles = prepare_inputs(est, run.data.subset(range(min(8, len(run.data)))), 8).singles
    try:
        native = per_item_ms(torch_runner(est.model_.to(dtype), dtype), singles)
    except RuntimeError:  # no CPU kernel for this dtype in some layer
        native = float("nan")
    lineage = {"step": name, "weights_dtype": str(dtype).removeprefix("torch."),
               "runs_as": "float32: load upcasts the weights (half-precision kernels are slow on most CPUs)",
               "native_half_ms_batch1_cpu": round(native, 3)}
    folder = save_compressed(est, run.out / name, lineage, run.bundle)
    return bundle_candidate(folder, f"stored {lineage['weights_dtype']}, runs as float32; native "
                                    f"{lineage['weights_dtype']} on this CPU: {native:.2f} ms/item at batch 1")


@STEPS.register("fp16")
def fp16(run: CompressRun) -> Candidate:
    """Weights stored as float16 (half the bytes)."""
    return _half(run, torch.float16, "fp16")


@STEPS.register("bf16")
def bf16(run: CompressRun) -> Candidate:
    """Weights stored as bfloat16 (float32's range, fewer mantissa bits)."""
    return _half(run, torch.bfloat16, "bf16")


@STEPS.register("int8")
def int8(run: CompressRun) -> Candidate:
    """ONNX int8 through onnxruntime's quantizer (``headstart.export.quantize``): an ONNX folder
    that ``headstart.load`` and its own ``predict.py`` run (measured as ``load`` gives it back)."""
    from headstart.export.onnx import export_onnx
    from headstart.export.quantize import IMAGE_DEFAULTS, TEXT_DEFAULTS, quantize_export

    est, folder = run.load(), run.out / "int8"
    sample = run.data.subset(range(min(64, len(run.data))))
    train = est._as_data(run.train) if run.train is not None else None
    n = (IMAGE_DEFAULTS if est.modality_ == "image" else TEXT_DEFAULTS)["n_calibration"]
    calibration = train.subset(range(min(n, len(train)))) if train is not None else sample
    export_onnx(est, folder, sample, source=run.bundle)
    path, parity = quantize_export(est, folder, sample, calibration=calibration)
    notes = f"ONNX int8 (headstart.load or its predict.py runs it); vs the bundle: {parity.format()}"
    size = folder_size(folder, ("model.onnx",))  # the fp32 file stays beside it for reference only
    return Candidate(folder, torch_runner(load(folder, device="cpu").model_), count_parameters(est.model_), size, notes)


def _pruned(run: CompressRun, method: str, target_key: str) -> Candidate:
    name = "pruned" if method == "channels" else "sparse"
    o = run.options
    distill = bool(o.get("distill", False))  # recovery learns the unpruned bundle's outputs (+ the unlabeled inputs)
    folder = prune_bundle(run.bundle, run.require_train(name), run.out / name, method, float(o.get(target_key, 0.5)),
                          int(o.get("prune_steps", 3)), int(o.get("recover_steps", 100)), float(o.get("lr", 1e-4)),
                          distill=distill, unlabeled=o.get("unlabeled") if distill else None,
                          temperature=float(o.get("temperature", 2.0)), alpha=float(o.get("alpha", 0.5)),
                          layer_decay=float(o.get("layer_decay", 0.7)), keep=list(o.get("keep", ())),
                          importance=str(o.get("importance", "l2")), cache_dir=o.get("cache_dir"),
                          recalibrate=int(o.get("recalibrate", 0)),
                          final_recover_steps=None if o.get("final_recover_steps") is None
                          else int(o["final_recover_steps"]))
    step = json.loads((folder / META).read_text())["compression"]["steps"][-1]
    what = (f"{step['flops_reduction']:.0%} fewer FLOPs" if method == "channels" else f"{step['sparsity']:.0%} zeros")
    how = "distillation from the original" if distill else "fine-tuning on the labels"
    return bundle_candidate(folder, f"{what} ({step['tool']}), {len(step['rounds'])} rounds with recovery by {how}")


@STEPS.register("distilled")
def distilled(run: CompressRun) -> Candidate:
    """A smaller student trained on the bundle's softened outputs and the true labels
    (``headstart.compression.distill``; student: the ``student`` option, default ``tiny:small_cnn``
    for images and ``tfidf:1-2`` for text)."""
    from headstart.compression.distill import distill

    student = run.options.get("student") or ("tfidf:1-2" if run.data.modality == "text" else "tiny:small_cnn")
    folder = distill(run.bundle, student, run.require_train("distilled"), run.options.get("unlabeled"),
                     out=run.out / "distilled", verbose=False)
    return bundle_candidate(folder, f"student {student}", run.data)  # measured through its own preprocessing


@STEPS.register("pruned")
def pruned(run: CompressRun) -> Candidate:
    """Structured channel/neuron pruning to ``flops_reduction`` fewer FLOPs, with recovery."""
    return _pruned(run, "channels", "flops_reduction")


@STEPS.register("sparse")
def sparse(run: CompressRun) -> Candidate:
    """Unstructured magnitude pruning to ``sparsity`` zeros, with recovery."""
    return _pruned(run, "magnitude", "sparsity")


def recommend(results: list[Measurement], target: str, tolerance: float) -> tuple[str, str]:
    """(name, why): the most accurate model, or the smallest / fastest (batch 1) one within
    ``tolerance`` of the source's accuracy."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    if target == "accuracy":
        best = max(results, key=lambda m: (m.accuracy, -m.ms_batch1))
        return best.name, "the most accurate (ties: the fastest at batch 1)"
    floor = results[0].accuracy - tolerance
    kept = [m for m in results if m.accuracy >= floor]
    best = min(kept, key=lambda m: m.size_bytes if target == "size" else m.ms_batch1)
    return best.name, (f"the {'smallest' if target == 'size' else 'fastest at batch 1'} of those within "
                       f"{100 * tolerance:g} points of the original's accuracy")


def table(results: list[Measurement]) -> str:
    """One row per model, ratios against the first (the original bundle)."""
    base = results[0]
    head = (f"{'model':<10} {'accuracy (95% CI)':<24} {'Δ pts':>6} {'size MiB':>13} {'params':>14} "
            f"{'ms/item b1':>15} {'ms/item b32':>15} {'items/s':>8}")
    rows = [head, "-" * len(head)]
    for m in results:
        rows.append(f"{m.name:<10} {100 * m.accuracy:5.1f}% ({100 * m.ci_low:4.1f}–{100 * m.ci_high:4.1f}){'':<5} "
                    f"{100 * (m.accuracy - base.accuracy):+6.1f} "
                    f"{m.size_bytes / 2**20:7.2f} {base.size_bytes / max(m.size_bytes, 1):4.1f}x "
                    f"{m.parameters / 1e6:7.2f}M {base.parameters / max(m.parameters, 1):4.1f}x "
                    f"{m.ms_batch1:8.2f} {base.ms_batch1 / m.ms_batch1:4.1f}x "
                    f"{m.ms_batch32:8.2f} {base.ms_batch32 / m.ms_batch32:4.1f}x {m.items_per_s:8.0f}")
    return "\n".join(rows)


def _record(folder: Path, m: Measurement, data: str) -> None:
    """The measurement goes into the step's lineage (headstart.json and the card, or export.json)."""
    meta_path = folder / META
    entry = {**m.to_dict(), "data": data}
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        steps = meta["compression"]["steps"] if "compression" in meta else meta["lineage"]  # distilled: lineage
        steps[-1]["measured"] = entry
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
        (folder / "README.md").write_text(model_card(meta))
    elif (folder / "export.json").is_file():
        meta = json.loads((folder / "export.json").read_text())
        meta["measured"] = entry
        (folder / "export.json").write_text(json.dumps(meta, indent=2))


def compress(bundle: str | Path, data: Any, out: str | Path, steps: list[str] | None = None,
             target: str = "accuracy", train: Any = None, tolerance: float = 0.01,
             options: dict[str, Any] | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Apply ``steps`` (default: int8, fp16, and pruned when ``train`` is given) to ``bundle``,
    measure each against it on ``data`` and write DIR/compress.json, frontier.png, report.html."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    steps = steps or ["int8", "fp16", *(["pruned"] if train is not None else [])]
    for s in steps:
        STEPS.get(s)  # unknown names fail before any work
    bundle, out = Path(bundle), Path(out)
    source = load(bundle, device="cpu")
    run = CompressRun(bundle, source._as_data(data), out, train, dict(options or {}))
    inputs = prepare_inputs(source, run.data)
    out.mkdir(parents=True, exist_ok=True)
    models = {SOURCE: (torch_runner(source.model_), {"folder": bundle, "size_bytes": bundle_size(bundle),
                                                     "parameters": count_parameters(source.model_),
                                                     "notes": "the uncompressed bundle"})}
    for name in steps:
        echo(f"compress: {name} ...")
        c = STEPS.get(name)(run)
        models[name] = (c.run, {"folder": c.folder, "size_bytes": c.size_bytes, "parameters": c.parameters,
                                "notes": c.notes, **({"inputs": c.inputs} if c.inputs is not None else {})})
    results = measure_all(models, inputs, int(run.options.get("latency_rounds", 3)))
    described = str(data) if isinstance(data, (str, Path)) else f"{len(run.data)} given examples"
    for m in results[1:]:
        _record(Path(m.folder), m, described)
    return _summarise(results, run, inputs, target, tolerance, echo)


def _summarise(results: list[Measurement], run: CompressRun, inputs: Inputs, target: str, tolerance: float,
               echo: Callable[[str], None]) -> dict[str, Any]:
    from headstart.compression.frontier import frontier_plot, write_report

    best, why = recommend(results, target, tolerance)
    summary = {"bundle": str(run.bundle), "data": f"{len(inputs.targets)} labeled examples", "target": target,
               "tolerance": tolerance, "recommended": best, "why": why, "options": run.options,
               "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "load": [round(v, 2) for v in os.getloadavg()]},
               "results": [m.to_dict() for m in results]}
    text = table(results)
    echo(text)
    for m in results[1:]:
        echo(f"  {m.name}: {m.notes}")
    echo(f"recommended for {target}: {best} ({why})")
    frontier_plot(results, best, run.out / "frontier.png")
    write_report(results, text, summary, run.out / "report.html", run.out / "frontier.png")
    (run.out / "compress.json").write_text(json.dumps(summary, indent=2, default=_json))
    return summary


def _json(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, LabeledData):  # given in memory (e.g. the unlabeled transfer set): described, not dumped
        return f"{len(obj)} given {obj.modality} inputs"
    return str(obj)
