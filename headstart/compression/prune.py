"""Pruning a fitted bundle: structured channels/neurons (Torch-Pruning) or unstructured weights
(``torch.nn.utils.prune``), in a few steps with a short fine-tune to recover after each.

- **structured** (``method="channels"``): Torch-Pruning (Fang et al., "DepGraph: Towards Any
  Structural Pruning", CVPR 2023), the maintained dependency-aware pruner, traces the model and
  removes whole output channels of convolutions (CNNs) or neurons of feed-forward layers
  (transformers) together with every layer that depends on them (BatchNorm, depthwise
  convolutions, the next layer's inputs, residual sums): no hand-written graph surgery. Channels
  are ranked by the L2 norm of their group's weights. The pooled features the head reads keep
  their size (the layers that produce them are left whole), and so do attention projections
  (query/key/value: heads are not removed; a try with Torch-Pruning's ``num_heads`` and
  ``prune_num_heads`` on transformers' BERT removed no head). ``keep``: name patterns (fnmatch,
  relative to the backbone) of more layers whose outputs keep their size, with every channel group
  coupled to them: e.g. an EfficientNet's stem and the projections feeding its residual sums
  (``model.conv_stem``, ``*.conv_pwl``), so only the inverted bottlenecks' hidden width (where most
  FLOPs are) is pruned. ``importance``: how channels are ranked (``IMPORTANCES``). The FLOPs
  target is reached in ``steps`` rounds
  (schedule 1 - r·k/steps); each round prunes in small increments until its FLOPs goal is met,
  then fine-tunes. The smaller architecture is recorded in ``headstart.json``
  (``headstart.compression.architecture``), so the bundle loads without the original.
- **unstructured** (``method="magnitude"``): global L1 magnitude pruning of every convolution and
  linear weight of the backbone, sparsity reached in ``steps`` rounds, masks kept through the
  recovery fine-tunes, then made permanent (``prune.remove``: no ``weight_orig``/``weight_mask``
  in the saved state). Same shapes, zeros stored densely: smaller only once compressed, faster
  only with sparse kernels.

The recovery fine-tune is headstart's Trainer with the ``fine_tuning`` strategy continuing from
the pruned model (``warm_start``: the head is kept), on the bundle's training data. Before it,
``recalibrate`` images may re-estimate the BatchNorm statistics (``torch.optim.swa_utils.update_bn``;
"adaptive BN", Li et al., "EagleEye", ECCV 2020): removing channels shifts the inputs of the
layers after them, while the fine-tune keeps BatchNorm statistics frozen.
"""
from __future__ import annotations

import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from headstart.api import Headstart, load, make_accelerator
from headstart.compression.architecture import changed_attributes, module_attributes
from headstart.data._base import LabeledData
from headstart.data.loaders import make_loader
from headstart.data.unlabeled import read_unlabeled
from headstart.strategies.fine_tuning import FineTuning
from headstart.tasks.distillation import DistillationTask, TeacherLogits
from headstart.training.context import FitContext, Split
from headstart.training.trainer import Trainer

METHODS = ("channels", "magnitude")
IMPORTANCES = {"l2": "L2 magnitude of each channel group", "l1": "L1 magnitude of each channel group",
               "bn_scale": "BatchNorm scale (|gamma|) of each channel group"}
Recover = Callable[[nn.Module], list[dict[str, Any]]]


def _logits(model: nn.Module, x: Any) -> torch.Tensor:
    return model(x).logits


def example_inputs(model: nn.Module, data: LabeledData, n: int = 1) -> Any:
    """The first ``n`` inputs of ``data`` prepared as the model reads them (tensor or token dict)."""
    bb = model.backbone
    loader = make_loader(data.subset(range(min(n, len(data)))), None, bb.pretrained_cfg, bb.tokenizer(),
                         train=False, batch_size=n)
    return next(iter(loader))["inputs"]


def count_flops(model: nn.Module, x: Any) -> int:
    """FLOPs of one forward pass on ``x`` (torch's counter: 2 per multiply-add of matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        _logits(model, x)
    model.train(was)
    return int(counter.get_total_flops())


def count_parameters(model: nn.Module, nonzero: bool = False) -> int:
    return int(sum(int((p != 0).sum()) if nonzero else p.numel() for p in model.parameters()))


def kept_layers(model: nn.Module, patterns: Sequence[str]) -> list[nn.Module]:
    """The backbone's modules whose names (relative to the backbone) match one of ``patterns``
    (fnmatch); a pattern that matches nothing is refused (a typo would silently prune all)."""
    named = list(model.backbone.named_modules())
    found = []
    for pattern in patterns:
        hits = [m for name, m in named if name and fnmatchcase(name, pattern)]
        if not hits:
            raise ValueError(f"keep pattern {pattern!r} matches no layer of {model.backbone.spec}")
        found += hits
    return found


def protected_layers(model: nn.Module, graph: Any, keep: Sequence[str] = ()) -> list[nn.Module]:
    """Layers whose outputs must keep their size: the head and task modules, the layers that
    produce the pooled features the head reads (found through the dependency graph: the group of
    the head's first input channel), attention projections (removing part of a head breaks
    the reshape into heads) and the backbone layers named by ``keep`` patterns."""
    import torch_pruning as tp

    keep = list(model.head.modules()) + list(model.task_modules.modules()) + kept_layers(model, keep)
    first = next((m for m in model.head.modules() if isinstance(m, nn.Linear)), None)
    if first is not None:
        group = graph.get_pruning_group(first, tp.prune_linear_in_channels, idxs=[0])
        keep += [dep.target.module for dep, _ in group if graph.is_out_channel_pruning_fn(dep.handler)]
    for m in model.backbone.modules():
        if "attention" in type(m).__name__.lower():
            keep += [s for s in m.modules() if isinstance(s, nn.Linear)]
    return keep


def _importance(name: str) -> Any:
    import torch_pruning as tp

    if name not in IMPORTANCES:
        raise ValueError(f"unknown channel importance {name!r}; known: {', '.join(IMPORTANCES)}")
    return tp.importance.BNScaleImportance() if name == "bn_scale" else \
        tp.importance.MagnitudeImportance(p=1 if name == "l1" else 2)


def _pruner(model: nn.Module, example: Any, increments: int, max_ratio: float, keep: Sequence[str] = (),
            importance: str = "l2") -> Any:
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, forward_fn=_logits)
    return tp.pruner.MetaPruner(model, example, importance=_importance(importance),
                                pruning_ratio=max_ratio, iterative_steps=increments, forward_fn=_logits,
                                ignored_layers=protected_layers(model, graph, keep),
                                root_module_types=[nn.Conv2d, nn.Conv1d, nn.Linear])


def _schedule(target: float, steps: int) -> list[float]:
    if not 0 < target < 1:
        raise ValueError(f"the pruning target must be a fraction between 0 and 1 (exclusive), got {target}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return [target * k / steps for k in range(1, steps + 1)]


def prune_channels(model: nn.Module, example: Any, flops_reduction: float, steps: int = 3,
                   recover: Recover | None = None, increments: int = 50, max_ratio: float = 0.9,
                   keep: Sequence[str] = (), importance: str = "l2",
                   final_recover: Recover | None = None) -> dict[str, Any]:
    """Remove channels/neurons until the FLOPs fall by ``flops_reduction`` (0.5: half), in
    ``steps`` rounds with ``recover(model)`` after each (``final_recover``, when given, after the
    last); ``keep``: name patterns of backbone layers left whole (with their coupled groups),
    ``importance``: the channel ranking (``IMPORTANCES``).
    Returns the lineage, with the changed module attributes under ``architecture``."""
    schedule = _schedule(flops_reduction, steps)
    model.eval()
    before, flops0, params0 = module_attributes(model), count_flops(model, example), count_parameters(model)
    pruner = _pruner(model, example, increments, max_ratio, keep, importance)
    rounds = []
    for i, goal in enumerate(schedule):
        t0 = time.perf_counter()
        flops = count_flops(model, example)
        while flops > (1 - goal) * flops0 and pruner.current_step < increments:
            pruner.step()
            flops = count_flops(model, example)
        if flops > (1 - goal) * flops0:
            raise ValueError(f"pruning stopped at {1 - flops / flops0:.0%} fewer FLOPs, short of {goal:.0%}: "
                             f"every prunable layer is at the {max_ratio:.0%} limit")
        fn = final_recover if final_recover is not None and i == len(schedule) - 1 else recover
        history = fn(model) if fn is not None else []
        rounds.append({"flops_reduction_goal": goal, "flops": flops, "parameters": count_parameters(model),
                       "recovery_epochs": len(history), "seconds": round(time.perf_counter() - t0, 1)})
    if getattr(model.backbone, "channels_last", False):
        model.backbone.to(memory_format=torch.channels_last)
    flops1 = count_flops(model, example)
    return {"method": "channels", "tool": _tool(), "importance": IMPORTANCES[importance], "kept": list(keep),
            "flops_before": flops0, "flops_after": flops1, "flops_reduction": 1 - flops1 / flops0,
            "parameters_before": params0, "parameters_after": count_parameters(model), "rounds": rounds,
            "architecture": changed_attributes(before, module_attributes(model))}


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The backbone's convolution and linear weights (what magnitude pruning thins)."""
    return [(m, "weight") for m in model.backbone.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def prune_magnitude(model: nn.Module, sparsity: float, steps: int = 3,
                    recover: Recover | None = None, final_recover: Recover | None = None) -> dict[str, Any]:
    """Zero the smallest weights of the backbone (global L1) until ``sparsity`` of them are zero,
    in ``steps`` rounds with ``recover(model)`` after each (``final_recover``, when given, after
    the last; masks kept while it trains); the
    masks are then made permanent, so the state has plain ``weight`` tensors again."""
    from torch.nn.utils import prune

    params = prunable_weights(model)
    if not params:
        raise ValueError(f"{model.backbone.spec}: no convolution or linear weights to prune")
    total = sum(getattr(m, n).numel() for m, n in params)
    done, rounds = 0.0, []
    schedule = _schedule(sparsity, steps)
    for i, goal in enumerate(schedule):
        t0 = time.perf_counter()
        # each call prunes a fraction of the weights not yet pruned
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=1 - (1 - goal) / (1 - done))
        done = goal
        fn = final_recover if final_recover is not None and i == len(schedule) - 1 else recover
        history = fn(model) if fn is not None else []
        rounds.append({"sparsity_goal": goal, "recovery_epochs": len(history),
                       "seconds": round(time.perf_counter() - t0, 1)})
    for m, n in params:
        prune.remove(m, n)
    zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in params)
    return {"method": "magnitude", "tool": f"torch.nn.utils.prune {torch.__version__} (global L1, made permanent)",
            "sparsity": zeros / total, "pruned_tensors": len(params), "rounds": rounds,
            "parameters_after": count_parameters(model), "nonzero_parameters_after": count_parameters(model, True)}


def _tool() -> str:
    from importlib.metadata import version

    return f"torch-pruning {version('torch-pruning')} (DepGraph, MetaPruner)"


def recalibrate_batchnorm(model: nn.Module, data: LabeledData, batch_size: int = 64) -> int:
    """Re-estimate every BatchNorm layer's running statistics on ``data`` (prepared as for
    inference, no augmentation; no weight changes); returns the number of BatchNorm layers."""
    from torch.optim.swa_utils import update_bn

    bb = model.backbone
    loader = make_loader(data, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=batch_size)
    was = model.training
    with torch.no_grad():
        update_bn((batch["inputs"] for batch in loader), model)
    model.train(was)
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def recovery(est: Headstart, train: LabeledData, steps: int = 100, lr: float = 1e-4,
             teacher: TeacherLogits | None = None, unlabeled: LabeledData | None = None,
             temperature: float = 2.0, alpha: float = 0.5, layer_decay: float = 0.7,
             recalibrate: LabeledData | None = None,
             on_step: Callable[[dict[str, Any]], None] | None = None) -> Recover:
    """A short fine-tune on ``train`` (``steps`` optimizer steps) through headstart's Trainer,
    continuing from the pruned model: the head is kept, a new warmup-free cosine schedule starts.
    With ``teacher`` (the unpruned model's logits, computed once) the loss is distillation's
    (Hinton et al.: ``alpha`` soft, 1 - ``alpha`` hard, ``temperature``) on ``train`` plus the
    ``unlabeled`` transfer set (soft term only); without it, the bundle's own task on the labels.
    ``layer_decay``: the per-group learning-rate decay (1: every layer at ``lr``; pruning changed them all).
    ``recalibrate``: inputs the BatchNorm statistics are re-estimated on first (``recalibrate_batchnorm``).
    ``on_step``: called after each optimizer step with its record (epoch, step, loss), e.g. to
    watch a long recovery."""
    task, extras = est.task_, {}
    if teacher is not None:
        task = DistillationTask(temperature=temperature, alpha=alpha, teacher_classes=teacher.classes)
        task.fit_targets(teacher.classes)
        extras = {"teacher": teacher, **({"unlabeled": unlabeled} if unlabeled is not None else {})}
    split = Split(train, task.encode(train.labels, train.origins, "recovery data"))

    def run(model: nn.Module) -> list[dict[str, Any]]:
        if recalibrate is not None:
            recalibrate_batchnorm(model, recalibrate)
            model.eval()
        if steps <= 0:
            return []
        rt = est.runtime_
        ctx = FitContext(make_accelerator(rt.device, rt.mixed_precision), None, batch_size=rt.batch_size,
                         seed=est.seed, verbose=False, warm_start=True, log=est._log, extras=dict(extras),
                         on_step=on_step)
        # max_epochs: the strategy's default cap (60 epochs) would cut a long recovery on a small
        # training set short (500 images at batch 32: 960 steps); max_steps stops it exactly
        strategy = FineTuning(lr=lr, steps=steps, max_steps=steps, warmup=0.0, layer_decay=layer_decay,
                              max_epochs=max(60, steps))
        history = Trainer(ctx).fit(model, task, split, None, strategy)
        model.eval().requires_grad_(False)
        return history
    return run


def original_logits(bundle: str | Path, inputs: list[LabeledData], cache_dir: Any = None) -> TeacherLogits:
    """The unpruned bundle's logits on every input of ``inputs`` (the recovery data and the
    transfer set), computed once before pruning starts and kept under the bundle's weights hash."""
    from headstart.compression.distill import load_teacher, teacher_logits

    cached = teacher_logits(load_teacher(bundle, "cpu"), Path(bundle).name, cache_dir)
    for data in inputs:
        cached(data)
    return cached


def prune_bundle(bundle: str | Path, train: Any, out: str | Path, method: str = "channels", target: float = 0.5,
                 steps: int = 3, recover_steps: int = 100, lr: float = 1e-4, evaluate: Any = None,
                 distill: bool = False, unlabeled: Any = None, temperature: float = 2.0, alpha: float = 0.5,
                 layer_decay: float = 0.7, keep: Sequence[str] = (), importance: str = "l2",
                 cache_dir: Any = None, recalibrate: int = 0, final_recover_steps: int | None = None) -> Path:
    """Prune the bundle at ``bundle`` (``target``: the FLOPs reduction for ``channels``, the
    sparsity for ``magnitude``), recovering on ``train`` after each step (``distill``: on the
    unpruned model's softened outputs too, and on the ``unlabeled`` inputs); write the pruned
    bundle to ``out`` with its lineage (and metrics on ``evaluate``, when given). ``keep`` and
    ``importance``: see ``prune_channels``. ``cache_dir``: where the unpruned model's logits are
    kept (default: the bundle's runtime cache; the pruned bundle records this one). ``recalibrate``:
    how many inputs (the training data, then the unlabeled ones) re-estimate the BatchNorm
    statistics after each pruning round, before its recovery (0: none). ``final_recover_steps``:
    optimizer steps of the last round's recovery instead of ``recover_steps`` (a long final
    recovery once the target is reached; None: the same as the others)."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; known: {', '.join(METHODS)}")
    if unlabeled is not None and not distill:
        raise ValueError("unlabeled inputs help pruning's recovery only through distillation: add distill=True "
                         "(--distill)")
    est = load(bundle, device="cpu")
    if cache_dir is not None:
        est.set_params(runtime__cache_dir=str(cache_dir) if cache_dir is not False else False)
    data = est._as_data(train)
    if data.labels is None or len(data) == 0:
        raise ValueError(f"{train}: pruning recovers on labeled training data; none found")
    extra = read_unlabeled(unlabeled, **est.data_.columns, modality=data.modality) if unlabeled is not None else None
    teacher = original_logits(bundle, [data, *([extra] if extra is not None else [])],
                              est.runtime_.cache_dir) if distill else None
    pool = LabeledData(list(data.items) + (list(extra.items) if extra is not None else []), None, data.modality)
    calibration = pool.subset(range(min(recalibrate, len(pool)))) if recalibrate > 0 else None
    recover = recovery(est, data, recover_steps, lr, teacher, extra, temperature, alpha, layer_decay, calibration)
    final = None if final_recover_steps is None else \
        recovery(est, data, final_recover_steps, lr, teacher, extra, temperature, alpha, layer_decay, calibration)
    if method == "channels":
        lineage = prune_channels(est.model_, example_inputs(est.model_, data), target, steps, recover,
                                 keep=keep, importance=importance, final_recover=final)
    else:
        lineage = prune_magnitude(est.model_, target, steps, recover, final)
    described = str(train) if isinstance(train, (str, Path)) else f"{len(data)} given examples"
    lineage.update(step="pruned" if method == "channels" else "sparse", recovery={
        "data": described, "optimizer_steps_per_round": recover_steps,
        "final_round_optimizer_steps": recover_steps if final_recover_steps is None else final_recover_steps,
        "lr": lr, "layer_decay": layer_decay,
        "batchnorm_recalibration_inputs": len(calibration) if calibration is not None else 0,
        **({"distillation": {"teacher": "the unpruned bundle", "temperature": temperature, "alpha": alpha,
                             "teacher_inputs": teacher.computed, "teacher_runs": teacher.calls,
                             "unlabeled_inputs": len(extra) if extra is not None else 0}} if teacher is not None else {})})
    return save_compressed(est, out, lineage, bundle, data, evaluate)


def save_compressed(est: Headstart, out: str | Path, lineage: dict[str, Any], source: str | Path,
                    reference: LabeledData | None = None, evaluate: Any = None) -> Path:
    """Save a compressed estimator as a bundle: its lineage appended under ``compression``, the
    source's metrics kept as ``before_compression`` (they no longer describe this model), the
    input-check reference recomputed on ``reference`` (the features moved)."""
    old = dict(getattr(est, "meta_", {}).get("compression") or {})
    architecture = lineage.pop("architecture", None) or old.get("architecture")
    est.meta_["compression"] = {"source": str(source), "steps": [*old.get("steps", []), lineage],
                                **({"architecture": architecture} if architecture else {})}
    metrics = {k: v for k, v in est.metrics_.items() if k not in ("test", "val")}
    est.metrics_ = {**metrics, "before_compression": {k: v for k, v in est.metrics_.items() if k in ("test", "val")}}
    if evaluate is not None:
        est.metrics_["test"] = est.evaluate(evaluate)
    if reference is not None:
        est._keep_reference(reference, None)
    return est.save(out)
