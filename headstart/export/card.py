"""The bundle's model card (README.md), written from its metadata."""
from __future__ import annotations

import math
from typing import Any


def _other_metrics(test: dict[str, Any]) -> str:
    """Regression, multi-label and multitask metrics as a markdown list."""
    keys = ("mae", "rmse", "r2", "micro_f1", "macro_f1", "map", "subset_accuracy")
    if "targets" in test:
        return "\n".join(f"- target `{name}`: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items() if k in keys or k == "accuracy")
                         for name, m in test["targets"].items())
    return "\n".join(f"- {k}: {test[k]:.4g}" for k in keys if k in test)


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy measured on n independent examples."""
    if n <= 0:
        return math.nan, math.nan
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def lineage_lines(meta: dict[str, Any]) -> list[str]:
    """One line per step that made this model from another (distillation: the teacher, T, alpha)."""
    return [f"- Made by {step.get('step', '?')}: " + ", ".join(f"{k} {v}" for k, v in step.items() if k != "step")
            for step in meta.get("lineage") or []]


def _compression_lines(meta: dict[str, Any]) -> list[str]:
    """The compression lineage (``headstart compress`` / pruning): source bundle and each step."""
    comp = meta.get("compression")
    if not comp:
        return []
    lines = ["", "## Compression", f"Made from the bundle `{comp.get('source')}` by:"]
    for s in comp.get("steps", []):
        what = {k: s[k] for k in ("method", "weights_dtype", "runs_as", "sparsity", "tool") if k in s}
        if "flops_before" in s:
            what["FLOPs"] = f"{s['flops_before']:,} -> {s['flops_after']:,} ({s['flops_reduction']:.0%} fewer)"
            what["parameters"] = f"{s['parameters_before']:,} -> {s['parameters_after']:,}"
        if "rounds" in s:
            what["rounds"] = f"{len(s['rounds'])}, each followed by a recovery fine-tune"
        lines.append(f"- `{s.get('step')}`: " + "; ".join(f"{k} {v}" for k, v in what.items()))
        m = s.get("measured")
        if m:
            lines.append(f"  - measured on {m['data']} (n={m['n']}): accuracy {m['accuracy']:.4f} (95% interval "
                         f"{m['ci_low']:.3f}–{m['ci_high']:.3f}), {m['ms_batch1']:.2f} ms/item at batch 1 on CPU")
    if comp.get("architecture"):
        lines.append(f"- The pruned architecture ({len(comp['architecture'])} changed layers) is recorded in "
                     "headstart.json: the bundle loads without the original weights.")
    lines.append("- The source bundle's own held-out metrics are kept under `metrics.before_compression` in "
                 "headstart.json; they do not describe this model.")
    return lines


def model_card(meta: dict[str, Any]) -> str:
    bb = meta["backbone"]
    cfg = bb["pretrained_cfg"]
    strat = meta.get("strategy") or {}
    m = meta.get("metrics", {})
    test = m.get("test")
    lines = [
        f"# headstart model: {bb['spec']} → {len(meta['classes'])} classes",
        "",
        "## Intended use",
        f"Classifies {meta['modality']} inputs into: {', '.join(map(str, meta['classes'][:30]))}"
        + (" …" if len(meta["classes"]) > 30 else "") + ". Use it on data like the training data; "
        "check accuracy on your own held-out data before relying on it.",
        "",
        "## How it was made",
        f"- Backbone: `{bb['spec']}` (licence: {cfg.get('license', 'unknown')}), {bb['num_features']} features",
        f"- Head: `{meta['head']['name']}` {meta['head'].get('params') or ''}",
        f"- Strategy: `{strat.get('name')}` — {strat.get('reason', '')}",
        f"- Training examples: {m.get('n_train', '?')}; fit time {m.get('fit_seconds', 0):.1f} s",
    ]
    if meta["modality"] == "image":
        lines.append(f"- Preprocessing: {cfg['input_size']}x{cfg['input_size']} RGB, mean {cfg['mean']}, "
                     f"std {cfg['std']}, {cfg['interpolation']} resize")
    else:
        lines.append(f"- Preprocessing: the backbone's tokenizer, max length {cfg['max_length']}, "
                     f"{cfg['pooling']} pooling")
    lines += lineage_lines(meta) + ["", "## Metrics"]
    task = meta.get("task", {}).get("name", "classification")
    lines.insert(-2, f"- Task: `{task}`")
    if test and "accuracy" not in test:
        lines += [f"Held-out test set (n={test['n']}):", "", _other_metrics(test)]
    elif test:
        lo, hi = wilson_interval(test["accuracy"], test["n"])
        lines.append(f"Held-out test set (n={test['n']}): accuracy {test['accuracy']:.4f} "
                     f"(95% interval {lo:.3f}–{hi:.3f}, Wilson, from the test-set size alone), "
                     f"macro-F1 {test['macro_f1']:.4f}.")
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for c, pc in test["per_class"].items():
            lines.append(f"| {c} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
    else:
        lines.append("No held-out test set was evaluated.")
    if m.get("estimate"):
        lines.append(f"\nHow this estimate was obtained: {m['estimate']}.")
    plan = meta.get("plan")
    if plan:
        lines += ["", "## How the strategy was chosen (planner)", "",
                  "| rung | budget | validation accuracy | seconds |", "|---|---|---|---|"]
        lines += [f"| {t['rung']} | {t['fidelity']:g} | {100 * t['val_accuracy']:.2f}% | {t['seconds']:.1f} |"
                  for t in plan["trials"]]
        lines += [""] + [f"- {d}" for d in plan["decisions"]]
        if plan.get("negative_transfer"):
            lines.append("- **Negative transfer**: a model trained from scratch beat every pretrained recipe here.")
    if "scratch" in m:
        s = m["scratch"]
        metric, value = s.get("metric", "accuracy"), s.get("value", s.get("accuracy"))
        lines.append(f"\nThe strongest from-scratch baseline ({s['backbone']}) on the same split: {metric} "
                     f"{value:.4f} in {s['fit_seconds']:.1f} s.")
    lines += _compression_lines(meta)
    data = meta.get("data")
    if data:
        train = data.get("counts", {}).get("train", {})
        lines += ["", "## Training data",
                  f"{sum(train.values()) or data.get('sizes', {}).get('train', 0)} labeled examples checked (before "
                  "any train/test split)" + (f", {len(train)} classes (largest / smallest class: "
                                             f"{data.get('imbalance', 1.0):.1f})" if train else "") + "; "
                  f"{len(data.get('bad', []))} bad sample(s) skipped."]
    warnings = list((data or {}).get("warnings", []))
    lines += ["", "## Limitations",
              "- Small test sets give wide error bars; one split is one draw (`headstart compare` "
              "repeats over seeds).",
              "- Inputs unlike the training data (other domains, resolutions, languages) may fail silently."]
    if data and data.get("imbalance", 1.0) > 3:
        lines.append(f"- Imbalanced classes ({data['imbalance']:.1f}:1): accuracy flatters the majority classes; "
                     "read the per-class recall.")
    lines += [f"- Data check: {w}" for w in warnings[:10]]
    lines += [f"- Licence of the pretrained weights: {cfg.get('license', 'unknown')}; it applies to this model too.",
              "", f"Versions: {meta.get('versions', {})}", ""]
    return "\n".join(lines)
