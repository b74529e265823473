"""The bundle's model card (README.md), written from its metadata."""
from __future__ import annotations

from typing import Any


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
    lines += ["", "## Metrics"]
    if test:
        lines.append(f"Held-out test set (n={test['n']}): accuracy {test['accuracy']:.4f}, "
                     f"macro-F1 {test['macro_f1']:.4f}.")
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for c, pc in test["per_class"].items():
            lines.append(f"| {c} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
    else:
        lines.append("No held-out test set was evaluated.")
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
        lines.append(f"\nSame architecture trained from scratch on the same split: accuracy "
                     f"{s['accuracy']:.4f} in {s['fit_seconds']:.1f} s.")
    lines += ["", "## Limitations",
              "- Small test sets give wide error bars; one split is one draw.",
              "- Inputs unlike the training data (other domains, resolutions, languages) may fail silently.",
              "", f"Versions: {meta.get('versions', {})}", ""]
    return "\n".join(lines)
