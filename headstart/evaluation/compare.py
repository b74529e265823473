"""Transfer vs training from scratch on the same split: the question every user asks."""
from __future__ import annotations

from typing import Any

from headstart.backbones._base import split_source

# From scratch nothing is pretrained: random head, one learning rate for all layers, BatchNorm
# statistics learned, the same step budget as the transfer run.
SCRATCH_PARAMS: dict[str, Any] = {"init_head": "random", "lr": 2e-3, "layer_decay": 1.0, "batchnorm": "train"}


def scratch_spec(spec: str) -> str:
    source, _ = split_source(spec)
    return spec if source == "scratch" else f"scratch:{spec}"


def compare_with_scratch(est: Any, steps: int = 300) -> dict[str, Any]:
    """Fit the same architecture from random initialisation on ``est``'s exact splits, for
    ``steps`` optimizer steps, and return both results side by side (accuracy, macro-F1, time)."""
    from headstart.api import Headstart

    splits = est.splits_
    params = {**est.get_params(), "backbone": scratch_spec(est.model_.backbone.spec), "strategy": "fine_tuning",
              "strategy_params": {**SCRATCH_PARAMS, "steps": steps},
              "out": None, "resume": False, "val_size": 0.0, "test_size": 0.0, "verbose": False}
    scratch = Headstart(**params).fit(splits["train"], val=splits["val"], test=splits["test"])
    transfer = {"backbone": est.model_.backbone.spec, "strategy": est.strategy_.name,
                "accuracy": est.metrics_["test"]["accuracy"], "macro_f1": est.metrics_["test"]["macro_f1"],
                "fit_seconds": est.fit_seconds_}
    result = {"backbone": params["backbone"], "strategy": f"fine_tuning from scratch, {steps} steps",
              "accuracy": scratch.metrics_["test"]["accuracy"], "macro_f1": scratch.metrics_["test"]["macro_f1"],
              "fit_seconds": scratch.fit_seconds_}
    est.metrics_["scratch"] = result
    return {"transfer": transfer, "scratch": result,
            "gain_points": 100 * (transfer["accuracy"] - result["accuracy"])}


def format_comparison(c: dict[str, Any]) -> str:
    rows = [("", "accuracy", "macro-F1", "fit time"),
            *[(f"{k}: {v['backbone']}", f"{v['accuracy']:.4f}", f"{v['macro_f1']:.4f}", f"{v['fit_seconds']:.1f} s")
              for k, v in (("transfer", c["transfer"]), ("scratch", c["scratch"]))]]
    w = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{w}}  {r[1]:>9}  {r[2]:>9}  {r[3]:>9}" for r in rows]
    verdict = "beat" if c["gain_points"] > 0 else "did NOT beat"
    lines.append(f"transfer {verdict} training from scratch by {c['gain_points']:+.1f} accuracy points")
    return "\n".join(lines)
