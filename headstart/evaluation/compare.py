"""Transfer vs training from scratch on the same split: the question every user asks."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from headstart import recipes
from headstart.evaluation.scoring import Headline, headline_for


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
    return _side_by_side(est, scratch)


def _side_by_side(est: Any, scratch: Any) -> dict[str, Any]:
    """Both fits' test results in the task's headline metric; ``better`` compares the tasks'
    scores (higher is better for every task, so MAE's direction is handled)."""
    def result(e: Any, strategy: str) -> dict[str, Any]:
        test = e.metrics_["test"]
        metric, value = e.task_.headline(test)
        return {"backbone": e.model_.backbone.spec, "strategy": strategy, "metric": metric, "value": value,
                "score": test["score"], "accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
                "fit_seconds": e.fit_seconds_}

    transfer = result(est, est.strategy_.name)
    res = result(scratch, f"{scratch.strategy_.name} from scratch")
    est.metrics_["scratch"] = res
    out = {"transfer": transfer, "scratch": res, "better": transfer["score"] > res["score"]}
    if transfer["accuracy"] is not None and res["accuracy"] is not None:
        out["gain_points"] = 100 * (transfer["accuracy"] - res["accuracy"])
    return out


def format_comparison(c: dict[str, Any]) -> str:
    t, sc = c["transfer"], c["scratch"]
    if "gain_points" in c:
        rows = [("", "accuracy", "macro-F1", "fit time"),
                *[(f"{k}: {v['backbone']}", f"{v['accuracy']:.4f}", f"{v['macro_f1']:.4f}", f"{v['fit_seconds']:.1f} s")
                  for k, v in (("transfer", t), ("scratch", sc))]]
    else:
        rows = [("", t["metric"], "fit time"),
                *[(f"{k}: {v['backbone']}", f"{v['value']:.4f}", f"{v['fit_seconds']:.1f} s")
                  for k, v in (("transfer", t), ("scratch", sc))]]
    w = max(len(r[0]) for r in rows)
    lines = ["  ".join([f"{r[0]:<{w}}", *[f"{x:>9}" for x in r[1:]]]) for r in rows]
    verdict = "beat" if c["better"] else "did NOT beat"
    if "gain_points" in c:
        lines.append(f"transfer {verdict} training from scratch by {c['gain_points']:+.1f} accuracy points")
    else:
        lines.append(f"transfer {verdict} training from scratch: {t['metric']} {t['value']:.4f} vs {sc['value']:.4f}")
    return "\n".join(lines)


# -- the full comparison: methods x training sizes x seeds, on one test set --------------------

COMPARED_TASKS = ("classification", "multilabel", "regression")


class ComparisonError(ValueError):
    """A comparison that cannot run as asked (task, methods, sizes), found before any compute."""


def nested_order(labels: list[Any], seed: int) -> np.ndarray:
    """An order of the examples whose every prefix is (nearly) stratified by ``labels`` (classes,
    or any strata: see ``subset_strata``): each example gets its position within its shuffled
    stratum as a fraction, and the order sorts by it. Prefixes are nested: the 100-example subset
    is inside the 500-example one."""
    rng = np.random.RandomState(seed)
    y = np.asarray([str(v) for v in labels], dtype=object)
    frac = np.empty(len(y))
    for c in sorted(set(y.tolist())):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        frac[idx] = (np.arange(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    return np.argsort(frac, kind="stable")


def subset_strata(kind: str, labels: Sequence[Any], separator: str = "|") -> list[Any]:
    """What the nested subsets (and compare's own test split) are stratified by: the class for
    classification, the quintile of the target for regression (fewer bins below 20 examples),
    the first label of each cell for multi-label."""
    if kind == "regression":
        from headstart.tasks.regression import as_number

        y = np.array([np.nan if (x := as_number(v)) is None else x for v in labels], dtype=float)
        k = max(1, min(5, len(y) // 4))
        edges = np.nanquantile(y, np.linspace(0, 1, k + 1)[1:-1]) if k > 1 else np.array([])
        return np.searchsorted(edges, y, side="right").tolist()
    if kind == "multilabel":
        from headstart.tasks.multilabel import MultiLabelTask

        split = MultiLabelTask(separator=separator).split
        return [next(iter(split(v)), "") for v in labels]
    return list(labels)


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over seeds; a single value has no interval (nan)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    half = float(t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


def resolve_task(task: Any, labels: Sequence[Any], separator: str = "|") -> tuple[str, str | None]:
    """(the task's kind — classification, multilabel or regression —, the detection said aloud
    when ``task`` is "auto"); refuses what compare does not cover (multitask)."""
    from headstart.evaluation.scoring import task_kind
    from headstart.tasks import TASKS, detect_task

    why = None
    if task == "auto":
        kind, why = detect_task(list(labels or []), separator)
    elif isinstance(task, str):
        if "," in task or task == "multitask":
            kind = "multitask"
        elif task not in TASKS:
            raise ComparisonError(f"unknown task {task!r}; known: {', '.join(TASKS.list())}")
        else:
            kind = task_kind(TASKS.get(task))
    else:
        kind = task_kind(task)
    if kind not in COMPARED_TASKS:
        raise ComparisonError(f"compare covers {', '.join(COMPARED_TASKS)} targets, not {kind}: compare one target "
                              "at a time (--label-column NAME --task KIND), or fit the multitask model with "
                              "`headstart fit`")
    return kind, why


@dataclass
class Comparison:
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per (method, size, seed)
    sizes: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    n_test: int = 0
    classes: list[Any] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # the largest-size, first-seed runs, for plots
    task: str = "classification"
    headline: Headline = field(default_factory=Headline)  # the metric it reports, and which way is better
    trivial: list[str] = field(default_factory=lambda: ["majority", "mean", "prior"])  # floors, not "scratch"
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it did not run for this task

    def add(self, method: str, n: int, seed: int, run: Any) -> None:
        """Record one run (its scalar metrics as the task computed them)."""
        if not self.runs:
            self.headline = headline_for(run.task, run.metrics)
        scalars = {k: float(v) for k, v in run.metrics.items() if isinstance(v, float)}
        self.runs.append({"method": method, "n": n, "seed": seed, **scalars, "seconds": run.seconds,
                          "peak_mb": run.peak_mb, "transfer": run.transfer})
        self.classes = run.classes

    def summary(self) -> list[dict[str, Any]]:
        """One row per (size, method): the headline's mean and 95% CI over seeds (display units;
        also under the metric's own key, e.g. ``accuracy``), the secondary metrics, time, memory."""
        h, rows = self.headline, []
        for n in self.sizes:
            for m in self.methods:
                rs = [r for r in self.runs if r["method"] == m and r["n"] == n]
                if not rs:
                    continue
                mean, lo, hi = mean_ci([h.value(r) for r in rs])
                row = {"method": m, "n": n, "metric": h.name, "value": mean, h.key: mean, "ci_low": lo, "ci_high": hi}
                row.update({k: float(np.mean([h.secondary_scale(k) * r[k] for r in rs])) for k, _ in h.secondary})
                rows.append({**row, "seconds": float(np.mean([r["seconds"] for r in rs])),
                             "peak_mb": float(np.mean([r["peak_mb"] for r in rs])),
                             "transfer": rs[0]["transfer"], "seeds": len(rs)})
        return rows

    def _paired(self, a: str, b: str, n: int) -> tuple[float, float, float] | None:
        """Mean and 95% CI over seeds of how much ``a`` is better than ``b`` (positive: better,
        whichever way the metric runs), in display units."""
        h = self.headline
        val = {(r["method"], r["seed"]): h.value(r) for r in self.runs if r["n"] == n}
        diffs = [h.direction * (val[(a, s)] - val[(b, s)]) for s in self.seeds if (a, s) in val and (b, s) in val]
        return mean_ci(diffs) if diffs else None

    def _ci(self, d: tuple[float, float, float] | None, prefix: str = " (95% CI ", suffix: str = ")") -> str:
        if d is None or math.isnan(d[1]):
            return ""
        return f"{prefix}{self.headline.fmt(d[1], True)}..{self.headline.fmt(d[2], True)}{suffix}"

    def _transfer_verdict(self, rows: list[dict[str, Any]], n: int) -> str | None:
        h = self.headline
        tr = [r for r in rows if r["transfer"]]
        sc = [r for r in rows if not r["transfer"] and r["method"] not in self.trivial]
        if not (tr and sc):
            return None
        best_t = max(tr, key=lambda r: h.direction * r["value"])
        best_s = max(sc, key=lambda r: h.direction * r["value"])
        d = self._paired(best_t["method"], best_s["method"], n)
        if d is None:
            return None
        ci = self._ci(d)
        if d[0] > 0:
            sure = "" if ci == "" or d[1] > 0 else "; the interval includes 0, so this is not certain"
            return (f"Transfer ({best_t['method']}) beat scratch ({best_s['method']}) by {h.fmt(d[0])} "
                    f"{h.unit}{ci} at {n} labels{sure}.")
        if d[0] == 0:
            return f"Transfer ({best_t['method']}) and scratch ({best_s['method']}) tied at {n} labels."
        return (f"Transfer did NOT beat scratch at {n} labels: {best_s['method']} is ahead of "
                f"{best_t['method']} by {h.fmt(-d[0])} {h.unit}{ci}. Use the scratch model here.")

    def _fine_tuning_verdict(self, by: dict[str, dict[str, Any]], n: int) -> str | None:
        if "fine_tuning" not in by or "linear_probe" not in by:
            return None
        h = self.headline
        d = self._paired("fine_tuning", "linear_probe", n)
        if d is None:
            return None
        cost = by["fine_tuning"]["seconds"] / max(by["linear_probe"]["seconds"], 1e-9)
        worth = d[0] >= h.min_gain(by["linear_probe"]["value"]) and (math.isnan(d[1]) or d[1] > 0)
        return (f"Fine-tuning was {'' if worth else 'not '}worth its {cost:.0f}-fold cost over the "
                f"linear probe at {n} labels ({h.fmt(d[0], True)} {h.unit}{self._ci(d, ', 95% CI ', '')}).")

    def verdicts(self) -> list[str]:
        """Plain sentences: did transfer beat scratch, by how much (in the headline metric, the
        right way round), and was fine-tuning worth it."""
        out, table = [], self.summary()
        for n in self.sizes:
            rows = [r for r in table if r["n"] == n]
            for v in (self._transfer_verdict(rows, n), self._fine_tuning_verdict({r["method"]: r for r in rows}, n)):
                if v is not None:
                    out.append(v)
        return out

    def format(self) -> str:
        h = self.headline
        head = f"{h.column} (95% CI)"
        wide = 0 if h.percent else 4  # intervals in the target's units take more room
        lines = [f"{'method':<14} {'N':>6} {head:>{26 + wide}}" + "".join(f" {label:>9}" for _, label in h.secondary)
                 + f" {'time':>9} {'peak MiB':>9}"]
        for r in self.summary():
            ci = "" if math.isnan(r["ci_low"]) else (f" ({r['ci_low']:.1f}..{r['ci_high']:.1f})" if h.percent
                                                     else f" ({r['ci_low']:.3g}..{r['ci_high']:.3g})")
            second = "".join(f" {h.show(k, r[k]):>9}" for k, _ in h.secondary)
            lines.append(f"{r['method']:<14} {r['n']:>6} {h.show(h.key, r['value']):>12}{ci:>{14 + wide}}{second} "
                         f"{r['seconds']:>8.1f}s {r['peak_mb']:>9.0f}")
        tail = "" if self.task == "classification" else (
            f"; task {self.task}, {h.name} {'higher' if h.direction > 0 else 'lower'} is better")
        lines.append(f"test set: {self.n_test} examples; seeds {self.seeds}{tail}")
        return "\n".join(lines + self.verdicts())

    def to_dict(self) -> dict[str, Any]:
        h = self.headline
        return {"task": self.task, "metric": {"name": h.name, "key": h.key, "higher_is_better": h.direction > 0},
                "sizes": self.sizes, "methods": self.methods, "seeds": self.seeds, "n_test": self.n_test,
                "classes": [str(c) for c in self.classes], "summary": self.summary(), "verdicts": self.verdicts(),
                "skipped": self.skipped, "runs": self.runs}


def _methods_for(kind: str, methods: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """The methods that run for this task (unknown names fail before any compute), and those
    skipped with the reason."""
    from headstart.evaluation.methods import DEFAULT_METHODS, METHODS

    chosen, skipped = [], {}
    for m in methods or DEFAULT_METHODS:
        if m not in METHODS:
            raise ComparisonError(f"unknown compare method {m!r}; known: {', '.join(METHODS.list())}")
        spec = METHODS.get(m)
        if spec.supports(kind):
            chosen.append(m)
        elif methods or not spec.trivial:  # another task's floor (majority, mean, prior) goes unsaid
            skipped[m] = f"for {', '.join(spec.tasks)} only"
    if not chosen:
        raise ComparisonError(f"none of the methods {', '.join(methods or DEFAULT_METHODS)} supports {kind} targets")
    return chosen, skipped


def _check_subset(kind: str, sub: Any, base: dict[str, Any], n: int) -> None:
    """Refuse a training subset the task cannot learn from, before any compute."""
    from headstart.evaluation.methods import fitted_task

    if kind == "classification":
        if len(set(map(str, sub.labels))) < 2:
            raise ComparisonError(f"a {n}-example subset holds a single class: use larger sizes")
        return
    try:
        fitted_task(sub, base)
    except ValueError as e:
        raise ComparisonError(f"a {n}-example subset cannot be learned ({e}): use larger sizes") from None


def run_comparison(train: Any, test: Any, base: dict[str, Any], *, methods: Sequence[str] | None = None,
                   sizes: Sequence[int | str] = ("all",), seeds: Sequence[int] = (0, 1, 2),
                   log: Callable[[str], None] | None = print) -> Comparison:
    """Every method the task supports x training size (nested subsets, stratified as
    ``subset_strata`` says) x seed, scored on ``test`` by the task. ``base`` holds the estimator
    parameters shared by every method (``task``: auto, classification, multilabel or regression;
    ``task_params``; ``data`` with the ``label_separator``)."""
    from headstart.evaluation.methods import METHODS, run_method

    sep = (base.get("data") or {}).get("label_separator", "|")
    kind, _ = resolve_task(base.get("task", "auto"), train.labels, sep)
    base = {**base, "task": kind if base.get("task", "auto") == "auto" else base["task"]}
    if base.get("backbone", "auto") == "auto":  # each row transfers from the one default encoder, not a per-fit choice
        base["backbone"] = recipes.DEFAULT_BACKBONES[train.modality]
    chosen, skipped = _methods_for(kind, methods)
    n_all = len(train)
    ns = sorted({n_all if str(s) == "all" else int(s) for s in sizes})
    if ns[-1] > n_all:
        raise ComparisonError(f"size {ns[-1]} exceeds the {n_all} training examples")
    comp = Comparison(sizes=ns, methods=chosen, seeds=list(seeds), n_test=len(test), task=kind,
                      trivial=[m for m in chosen if METHODS.get(m).trivial], skipped=skipped)
    for m, why in skipped.items():
        if log:
            log(f"  {m:<13} skipped: {why} (this is {kind})")
    strata = subset_strata(kind, train.labels, sep)
    subsets: dict[tuple[int, int], Any] = {}
    for seed in seeds:
        order = nested_order(strata, seed)
        for n in ns:
            subsets[seed, n] = train.subset(np.sort(order[:n]).tolist())
            _check_subset(kind, subsets[seed, n], base, n)  # every subset before any compute
    for seed in seeds:
        for n in ns:
            sub = subsets[seed, n]
            for m in chosen:
                run = run_method(m, sub, test, {**base, "seed": seed})
                comp.add(m, n, seed, run)
                if n == ns[-1] and seed == seeds[0]:
                    comp.detail[m] = run
                if log:
                    log(f"  {m:<13} N={n:<6} seed {seed}: {_shown(comp.headline, run.metrics)} "
                        f"({run.seconds:.1f} s, {run.peak_mb:.0f} MiB)")
    return comp


def _shown(h: Headline, metrics: dict[str, Any]) -> str:
    """One run's headline for the progress log: "91.25%" (accuracy), "micro-F1 88.10%", "MAE 0.4679"."""
    v = h.value(metrics)
    if h.key == "accuracy":
        return f"{v:.2f}%"
    return f"{h.name} {v:.2f}%" if h.percent else f"{h.name} {v:.4g}"
