"""Transfer vs training from scratch on the same split: the question every user asks."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from headstart import recipes


def compare_with_scratch(est: Any) -> dict[str, Any]:
    """Fit the strongest from-scratch baseline ``compare`` uses (``recipes.scratch``: a small CNN
    for images, TF-IDF + logistic regression for text) on ``est``'s exact splits, and return
    both results side by side (the task's headline metric, time)."""
    from headstart.api import Headstart

    splits = est.splits_
    recipe = recipes.scratch(est.modality_)
    params = {**est.get_params(deep=False), "strategy_params": None, "head_params": None, **recipe,
              "run": None, "val_size": 0.0, "test_size": 0.0, "verbose": False}
    scratch = Headstart(**params).fit(splits["train"], val=splits["val"], test=splits["test"])
    name, _ = est.task_.headline(est.metrics_["test"])
    transfer = {"backbone": est.model_.backbone.spec, "strategy": est.strategy_.name,
                "accuracy": est.metrics_["test"].get("accuracy"), "macro_f1": est.metrics_["test"].get("macro_f1"),
                "fit_seconds": est.fit_seconds_}
    result = {"backbone": scratch.model_.backbone.spec, "strategy": f"{scratch.strategy_.name} from scratch",
              "accuracy": scratch.metrics_["test"].get("accuracy"),
              "macro_f1": scratch.metrics_["test"].get("macro_f1"), "fit_seconds": scratch.fit_seconds_}
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


# -- the full comparison: methods x training sizes x seeds, on one test set --------------------

def nested_order(labels: list[Any], seed: int) -> np.ndarray:
    """An order of the examples whose every prefix is (nearly) stratified: each example gets
    its position within its shuffled class as a fraction, and the order sorts by it. Prefixes
    are nested: the 100-example subset is inside the 500-example one."""
    rng = np.random.RandomState(seed)
    y = np.asarray([str(v) for v in labels], dtype=object)
    frac = np.empty(len(y))
    for c in sorted(set(y.tolist())):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        frac[idx] = (np.arange(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    return np.argsort(frac, kind="stable")


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over seeds; a single value has no interval (nan)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    half = float(t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


@dataclass
class Comparison:
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per (method, size, seed)
    sizes: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    n_test: int = 0
    classes: list[Any] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # the largest-size, first-seed runs, for plots

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for n in self.sizes:
            for m in self.methods:
                rs = [r for r in self.runs if r["method"] == m and r["n"] == n]
                if not rs:
                    continue
                mean, lo, hi = mean_ci([100 * r["accuracy"] for r in rs])
                rows.append({"method": m, "n": n, "accuracy": mean, "ci_low": lo, "ci_high": hi,
                             "macro_f1": float(np.mean([100 * r["macro_f1"] for r in rs])),
                             "seconds": float(np.mean([r["seconds"] for r in rs])),
                             "peak_mb": float(np.mean([r["peak_mb"] for r in rs])),
                             "transfer": rs[0]["transfer"], "seeds": len(rs)})
        return rows

    def _paired(self, a: str, b: str, n: int) -> tuple[float, float, float] | None:
        acc = {(r["method"], r["seed"]): 100 * r["accuracy"] for r in self.runs if r["n"] == n}
        diffs = [acc[(a, s)] - acc[(b, s)] for s in self.seeds if (a, s) in acc and (b, s) in acc]
        return mean_ci(diffs) if diffs else None

    def verdicts(self) -> list[str]:
        """Plain sentences: did transfer beat scratch, by how much, and was fine-tuning worth it."""
        out = []
        table = self.summary()
        for n in self.sizes:
            rows = [r for r in table if r["n"] == n]
            tr = [r for r in rows if r["transfer"]]
            sc = [r for r in rows if not r["transfer"] and r["method"] != "majority"]
            if tr and sc:
                best_t = max(tr, key=lambda r: r["accuracy"])
                best_s = max(sc, key=lambda r: r["accuracy"])
                d = self._paired(best_t["method"], best_s["method"], n)
                ci = "" if d is None or math.isnan(d[1]) else f" (95% CI {d[1]:+.1f}..{d[2]:+.1f})"
                if d is not None and d[0] > 0:
                    sure = "" if ci == "" or d[1] > 0 else "; the interval includes 0, so this is not certain"
                    out.append(f"Transfer ({best_t['method']}) beat scratch ({best_s['method']}) by {d[0]:.1f} "
                               f"points{ci} at {n} labels{sure}.")
                elif d is not None and d[0] == 0:
                    out.append(f"Transfer ({best_t['method']}) and scratch ({best_s['method']}) tied at {n} labels.")
                elif d is not None:
                    out.append(f"Transfer did NOT beat scratch at {n} labels: {best_s['method']} is ahead of "
                               f"{best_t['method']} by {-d[0]:.1f} points{ci}. Use the scratch model here.")
            by = {r["method"]: r for r in rows}
            if "fine_tuning" in by and "linear_probe" in by:
                d = self._paired("fine_tuning", "linear_probe", n)
                cost = by["fine_tuning"]["seconds"] / max(by["linear_probe"]["seconds"], 1e-9)
                worth = d is not None and d[0] >= 1.0 and (math.isnan(d[1]) or d[1] > 0)
                out.append(f"Fine-tuning was {'' if worth else 'not '}worth its {cost:.0f}-fold cost over the "
                           f"linear probe at {n} labels ({d[0]:+.1f} points"
                           + ("" if d is None or math.isnan(d[1]) else f", 95% CI {d[1]:+.1f}..{d[2]:+.1f}") + ").")
        return out

    def format(self) -> str:
        lines = [f"{'method':<14} {'N':>6} {'accuracy % (95% CI)':>26} {'macro-F1':>9} {'time':>9} {'peak MiB':>9}"]
        for r in self.summary():
            ci = "" if math.isnan(r["ci_low"]) else f" ({r['ci_low']:.1f}..{r['ci_high']:.1f})"
            lines.append(f"{r['method']:<14} {r['n']:>6} {r['accuracy']:>12.2f}{ci:>14} {r['macro_f1']:>9.2f} "
                         f"{r['seconds']:>8.1f}s {r['peak_mb']:>9.0f}")
        lines.append(f"test set: {self.n_test} examples; seeds {self.seeds}")
        return "\n".join(lines + self.verdicts())

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "methods": self.methods, "seeds": self.seeds, "n_test": self.n_test,
                "classes": [str(c) for c in self.classes], "summary": self.summary(), "verdicts": self.verdicts(),
                "runs": self.runs}


def run_comparison(train: Any, test: Any, base: dict[str, Any], *, methods: Sequence[str] | None = None,
                   sizes: Sequence[int | str] = ("all",), seeds: Sequence[int] = (0, 1, 2),
                   log: Callable[[str], None] | None = print) -> Comparison:
    """Every method x training size (nested stratified subsets) x seed, scored on ``test``."""
    from headstart.evaluation.methods import DEFAULT_METHODS, METHODS, run_method

    methods = list(methods or DEFAULT_METHODS)
    for m in methods:
        METHODS.get(m)  # unknown names fail before any compute
    n_all = len(train)
    ns = sorted({n_all if str(s) == "all" else int(s) for s in sizes})
    if ns[-1] > n_all:
        raise ValueError(f"size {ns[-1]} exceeds the {n_all} training examples")
    comp = Comparison(sizes=ns, methods=methods, seeds=list(seeds), n_test=len(test))
    for seed in seeds:
        order = nested_order(train.labels, seed)
        for n in ns:
            sub = train.subset(np.sort(order[:n]).tolist())
            if len(set(map(str, sub.labels))) < 2:
                raise ValueError(f"a {n}-example subset holds a single class: use larger sizes")
            for m in methods:
                run = run_method(m, sub, test, {**base, "seed": seed})
                comp.classes = run.classes
                comp.runs.append({"method": m, "n": n, "seed": seed, "accuracy": run.metrics["accuracy"],
                                  "macro_f1": run.metrics["macro_f1"], "seconds": run.seconds,
                                  "peak_mb": run.peak_mb, "transfer": run.transfer})
                if n == ns[-1] and seed == seeds[0]:
                    comp.detail[m] = run
                if log:
                    log(f"  {m:<13} N={n:<6} seed {seed}: {100 * run.metrics['accuracy']:.2f}% "
                        f"({run.seconds:.1f} s, {run.peak_mb:.0f} MiB)")
    return comp
