"""``headstart`` command line: every command is a thin call into the library."""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Adapt pretrained image, text and audio models to your labeled data, and prove it beat scratch.")


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when possible (numbers, bools, lists)."""
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise typer.BadParameter(f"expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# Options shared by several commands, defined once.
TextColumn = Annotated[str, typer.Option("--text-column", help="CSV/JSONL column with the texts")]
PathColumn = Annotated[str, typer.Option("--path-column", help="CSV/JSONL column with image paths")]
LabelColumn = Annotated[str, typer.Option("--label-column", help="label column; several for multitask: genre,price")]
CacheDir = Annotated[Optional[Path], typer.Option("--cache-dir", help="feature cache (default ~/.cache/headstart)")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu to force the CPU")]


class RegistryHelp(TyperCommand):
    """--help that lists what the registries hold ({tasks}, {heads}, {strategies} in option help),
    filled in only when help is shown: importing the CLI stays free of torch."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from headstart.heads import HEADS
        from headstart.strategies import STRATEGIES
        from headstart.tasks import TASKS

        names = {"tasks": TASKS, "heads": HEADS, "strategies": STRATEGIES}
        for p in self.params:
            if getattr(p, "help", None) and "{" in p.help:
                p.help = p.help.format(**{k: " | ".join(r.list()) for k, r in names.items()})
        super().format_help(ctx, formatter)


def _data_spec(text_column: str, path_column: str, label_column: str, **extra: Any) -> Any:
    from headstart.config import DataSpec

    return DataSpec(text_column=text_column, path_column=path_column, label_column=label_column, **extra)


def _check_adapt(adapt: str | None, target: Path | None, planned: bool, target_test: Path | None = None) -> None:
    """``--adapt`` names a known method and has a target; with the planner, only ``auto`` (the
    planner chooses the method, by the label-free criterion); ``--target-test`` evaluates an
    adaptation, so it comes with ``--adapt`` (and without the planner)."""
    if planned and target_test is not None:
        raise typer.BadParameter("--target-test with --budget: the planner does not evaluate on target labels yet; "
                                 "fit without --budget, or evaluate the bundle with `headstart eval`")
    if adapt is None:
        if target_test is not None:
            raise typer.BadParameter("--target-test evaluates an adaptation: give --adapt and --target-unlabeled too")
        return
    from headstart.tasks.adaptation import ADAPTATION_METHODS

    if adapt not in ADAPTATION_METHODS:
        raise typer.BadParameter(f"unknown --adapt {adapt!r}; known: {', '.join(ADAPTATION_METHODS)}")
    if planned and adapt != "auto":
        raise typer.BadParameter(f"--adapt {adapt} with --budget: the planner chooses the adaptation method itself "
                                 "(by a label-free criterion) when --target-unlabeled is given; drop --adapt (or use "
                                 "--adapt auto), or fit without --budget")
    if target is None:
        raise typer.BadParameter("--adapt needs --target-unlabeled (the unlabeled inputs to adapt to)")


def _head_params(hidden: str | None, dropout: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hidden:
        out["hidden"] = [int(h) for h in hidden.split(",")]
    if dropout is not None:
        out["dropout"] = dropout
    return out


@app.command(cls=RegistryHelp)
def fit(data: Path = typer.Argument(..., help="image folder (one subfolder per class), or CSV/JSONL"),
        backbone: str = typer.Option("auto", help="auto (text: the best probe among installed encoders and TF-IDF) "
                                     "| catalog alias | source:name (see `headstart backbones`)"),
        task: str = typer.Option("auto", help="auto (from the labels) | {tasks} | "
                                 "one per label column for multitask, e.g. classification,regression"),
        strategy: str = typer.Option("auto", help="auto | plan | {strategies}"),
        head: str = typer.Option("linear", help="{heads}"),
        hidden: Optional[str] = typer.Option(None, help="mlp hidden sizes, e.g. 1024 or 512,256"),
        dropout: Optional[float] = typer.Option(None, help="head dropout"),
        param: list[str] = typer.Option([], "--param", "-p", help="strategy parameter key=value (repeatable)"),
        task_param: list[str] = typer.Option([], "--task-param", help="task parameter key=value, e.g. "
                                             "label_smoothing=0.2, objective=huber (repeatable)"),
        label_sep: str = typer.Option("|", help="separator of several labels in one cell (multilabel)"),
        out: Path = typer.Option(Path("headstart-model"), help="bundle directory to write"),
        val: Optional[Path] = typer.Option(None, help="explicit validation data"),
        test: Optional[Path] = typer.Option(None, help="explicit test data (else a split)"),
        final_fit: str = typer.Option("all", help="without --test: all = measure on a held-out 20%, then train "
                                      "again on every label and return that model | split = return the measured one"),
        image_size: Optional[int] = typer.Option(None, help="input size (default: from the data and backbone)"),
        max_length: Optional[int] = typer.Option(None, help="max tokens for text"),
        batch_size: int = typer.Option(32),
        seed: int = typer.Option(0),
        text_column: TextColumn = "text", path_column: PathColumn = "path", label_column: LabelColumn = "label",
        cache_dir: CacheDir = None, device: Device = None,
        resume: bool = typer.Option(False, help="continue from the last checkpoint in OUT/checkpoints"),
        checkpoint_every: Optional[int] = typer.Option(None, help="also checkpoint every N optimizer steps"),
        num_workers: str = typer.Option("0", help="DataLoader worker processes, or auto (from the CPU count)"),
        compile: bool = typer.Option(False, "--compile", help="torch.compile the model (long runs on GPU)"),
        on_bad_sample: str = typer.Option("skip", help="skip (list every skipped file) | fail"),
        budget: Optional[str] = typer.Option(None, help="with --strategy auto: run the planner within this time, e.g. 10m"),
        compare_scratch: bool = typer.Option(False, help="also train the strongest from-scratch baseline "
                                             "(small CNN / TF-IDF + logistic regression) on the same split"),
        target_unlabeled: Optional[Path] = typer.Option(None, help="unlabeled inputs from the domain the model "
                                                        "will meet (a folder of images, or a CSV/JSONL of paths or "
                                                        "texts; labels, if any, are ignored)"),
        adapt: Optional[str] = typer.Option(None, help="adapt to --target-unlabeled: dann | cdan | coral | mmd | entropy "
                                            "(fine-tunes) | adabn | feature_align (no training) | auto (feature_align + "
                                            "self-training, or source-only, by a label-free criterion)"),
        target_test: Optional[Path] = typer.Option(None, help="with --adapt: labeled data from the target domain "
                                                   "for EVALUATION ONLY (its labels never train or choose anything): "
                                                   "the report shows source-only vs adapted accuracy there, per "
                                                   "class, and the oracle pick beside the label-free one"),
        quiet: bool = typer.Option(False)) -> None:
    """Fit a model and write a bundle (model.safetensors + headstart.json + README.md)."""
    started = time.perf_counter()  # a --budget counts from here, the library's imports included
    from headstart.api import Headstart
    from headstart.config import RunOptions, Runtime

    _check_adapt(adapt, target_unlabeled, budget is not None or strategy == "plan", target_test)
    head_params = _head_params(hidden, dropout)
    try:
        est = Headstart(backbone=backbone, strategy=strategy, head=head, task=task, adapt=adapt,
                        head_params=head_params or None,
                        strategy_params=_parse_params(param) or None, task_params=_parse_params(task_param) or None,
                        preprocessing={"image_size": image_size, "max_length": max_length}, seed=seed,
                        final_fit=final_fit,
                        runtime=Runtime(device=device, compile=compile, batch_size=batch_size, cache_dir=cache_dir,
                                        num_workers=num_workers if num_workers == "auto" else int(num_workers)),
                        run=RunOptions(out=out, resume=resume, checkpoint_every=checkpoint_every),
                        data=_data_spec(text_column, path_column, label_column, label_separator=label_sep,
                                        on_bad_sample=on_bad_sample),
                        verbose=not quiet)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if budget is not None or strategy == "plan":  # the planner chooses the strategy, within the budget
        est = _plan_fit(est, data, val, test, budget, _parse_params(param), quiet, started, target_unlabeled)
    else:
        _interruptible(lambda: est.fit(data, val=val, test=test, unlabeled=target_unlabeled,
                                       target_test=target_test))  # writes the bundle (and checkpoints)
    if getattr(est, "adaptation_", None) is not None:
        typer.echo("\n".join(est.adaptation_.lines()))
    if compare_scratch:
        _compare_scratch(est, out)
    _next_steps(out, est.modality_)


def _interruptible(run: Any) -> Any:
    """``run()``; a training interrupted by a signal exits 130 with how to resume from the CLI."""
    from headstart.training.loop import TrainingInterrupted

    try:
        return run()
    except TrainingInterrupted as e:
        typer.echo(str(e).replace("run the same command with --resume (Python: resume=True)",
                                  "run the same command with --resume"), err=True)
        raise typer.Exit(130) from None


def _plan_fit(est: Any, data: Path, val: Path | None, test: Path | None, budget: str | None,
              planner_params: dict[str, Any], quiet: bool, started: float, target: Path | None = None) -> Any:
    """``fit --budget``: the planner chooses the strategy within the budget (``-p rungs=[...]``,
    ``margin=...``, ``folds=...`` are its parameters), and with ``target`` (unlabeled) among
    adaptation rungs too, by a label-free criterion; returns its best estimator."""
    from headstart.selection.planner import Planner

    est.set_params(strategy="auto", strategy_params=None)
    return _interruptible(lambda: Planner(est, budget=budget, verbose=not quiet, **planner_params).fit(
        data, val=val, test=test, unlabeled=target, spent=time.perf_counter() - started).best_estimator_)


def _next_steps(out: Path, modality: str) -> None:
    """Where everything went, and the commands a user runs next."""
    inputs = "FOLDER_OR_CSV" if modality in ("image", "audio") else "SERIES.csv" if modality == "timeseries" else (
        "TEXTS.csv")
    lines = [f"bundle: {out}  (model.safetensors, headstart.json, README.md = the model card)",
             f"report: {out / 'report.html'}"]
    if (out / "logs").exists():
        lines.append(f"logs:   {out / 'logs'}  (tensorboard --logdir {out / 'logs'})")
    lines += ["next:",
              f"  headstart predict {out} {inputs} --out predictions.csv",
              f"  headstart eval {out} LABELED_TEST_DATA",
              f"  headstart serve {out}    # then open http://127.0.0.1:8000/"]
    typer.echo("\n".join(lines))


def _compare_scratch(est: Any, out: Path) -> None:
    """``fit --compare-scratch``: the strongest from-scratch baseline on the same split."""
    from headstart.evaluation.compare import compare_with_scratch, format_comparison

    if "test" not in est.metrics_:
        raise typer.BadParameter("--compare-scratch needs a test split")
    typer.echo(format_comparison(compare_with_scratch(est)))
    est.save(out)  # again, now with the scratch result in the metrics, model card and report
    est.write_report(out)


@app.command()
def check(data: Path = typer.Argument(..., help="image folder (one subfolder per class), or CSV/JSONL"),
          val: Optional[Path] = typer.Option(None, help="explicit validation data"),
          test: Optional[Path] = typer.Option(None, help="explicit test data"),
          text_column: TextColumn = "text", path_column: PathColumn = "path",
          label_column: LabelColumn = "label",
          min_size: int = typer.Option(8, help="smallest usable image side in pixels"),
          on_bad_sample: str = typer.Option("skip", help="skip: report and exit 0 | fail: exit 1 on any bad sample"),
          as_json: bool = typer.Option(False, "--json", help="print the report as JSON")) -> None:
    """Pre-flight report: counts per class, bad files, duplicates and leakage, imbalance.
    ``fit`` runs the same checks before training."""
    from headstart.data.sources import read_data
    from headstart.data.validate import DataError, check_data

    cols = dict(text_column=text_column, path_column=path_column, label_column=label_column)
    try:
        train = read_data(data, **cols)
        mod = train.modality
        extra = [read_data(p, **cols) if p is not None else None for p in (val, test)]
        for d in extra:
            if d is not None and d.modality != mod:
                raise DataError(f"{d.origins[0] if d.origins else d}: {d.modality} data but {data} is {mod}")
        report, *_ = check_data(train, *extra, policy=on_bad_sample, min_size=min_size,
                                root=data if data.is_dir() else None)
    except (DataError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.format())


@app.command("eval")
def eval_(bundle: Path, data: Path,
          json_out: Optional[Path] = typer.Option(None, "--json", help="write the metrics as JSON here"),
          text_column: TextColumn = "text", path_column: PathColumn = "path",
          label_column: LabelColumn = "label") -> None:
    """Evaluate a bundle on labeled data."""
    from headstart.api import load

    est = load(bundle)
    given = {"text_column": text_column, "path_column": path_column, "label_column": label_column}
    defaults = {"text_column": "text", "path_column": "path", "label_column": "label"}
    est.set_params(**{f"data__{k}": v for k, v in given.items() if v != defaults[k]})  # else the bundle's
    m = est.evaluate(data)
    typer.echo(est.task_.format_metrics(m))
    if json_out:
        json_out.write_text(json.dumps(m, indent=2))


@app.command()
def predict(bundle: Path, inputs: list[str] = typer.Argument(..., help="image files or a folder of images (any "
                                                            "depth), a CSV/JSONL of paths or texts, or texts"),
            format: str = typer.Option("csv", help="csv | json"),
            output: Optional[Path] = typer.Option(None, "--out", "--output", help="write here instead of stdout; "
                                                  "CSV output is streamed batch by batch (any number of inputs)"),
            resume: bool = typer.Option(False, help="continue an interrupted --out run where it stopped"),
            batch_size: int = typer.Option(64),
            num_workers: str = typer.Option("auto", help="image decoding workers, or auto (from the CPU count)"),
            ood_score: bool = typer.Option(False, "--ood-score", help="add an ood_score column: distance to the "
                                           "nearest training example's features over the typical one (about 1 in "
                                           "distribution)"),
            device: Device = None, quiet: bool = typer.Option(False, help="no progress lines")) -> None:
    """Predict labels and class probabilities (or the task's outputs), one row per input. From 30
    inputs on, they are also checked against the data the model was fitted for: a warning when
    they clearly differ."""
    from headstart.api import load

    est = load(bundle, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", _shift_warning())
        try:
            data = _inputs(est, inputs)
            if output is not None and format == "csv":
                from headstart.inference import predict_to_csv

                n = predict_to_csv(est, data, output, resume=resume, batch_size=batch_size,
                                   num_workers=num_workers if num_workers == "auto" else int(num_workers),
                                   progress=not quiet, ood_score=ood_score)
                typer.echo(f"{n} predictions written to {output}" + (" (resumed)" if resume else ""), err=True)
            else:
                _print_predictions(est, data, format, output, ood_score)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)


def _shift_warning() -> type:
    from headstart.adaptation.reference import InputShiftWarning

    return InputShiftWarning


def _inputs(est: Any, inputs: list[str]) -> Any:
    """LabeledData in the bundle's modality: a folder expands to its images, a .csv/.jsonl to its
    paths or texts, a .txt (text models) to its lines; anything else is an image path or a text."""
    from headstart.data._base import LabeledData
    from headstart.data.unlabeled import read_unlabeled

    first = Path(inputs[0])
    if len(inputs) == 1 and (first.is_dir() or first.suffix.lower() in (".csv", ".tsv", ".jsonl", ".npz", ".npy")):
        data = read_unlabeled(first, **est.data_.columns)
        if data.modality != est.modality_:
            raise ValueError(f"{first}: {data.modality} inputs, but this bundle is a {est.modality_} model")
        return data
    items: list[Any] = []
    for i in inputs:
        p = Path(i)
        if est.modality_ in ("image", "audio"):
            items.append(p)
        elif p.suffix.lower() == ".txt" and p.is_file():
            items += [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            items.append(i)
    return LabeledData(items, None, est.modality_)


def _print_predictions(est: Any, data: Any, format: str, output: Optional[Path], ood_score: bool = False) -> None:
    import pandas as pd
    import torch

    from headstart.inference import flat_row, records

    if format not in ("csv", "json"):
        raise typer.BadParameter("format must be csv or json")
    logits, scores = est.outputs_and_ood_scores(data) if ood_score else (est.decision_function(data), None)
    recs = records(est.task_, torch.from_numpy(logits))
    if scores is not None:
        recs = [{**r, "ood_score": round(float(s), 4)} for r, s in zip(recs, scores)]
    if format == "json":
        text = json.dumps([{"input": str(it), **r} for it, r in zip(data.items, recs)], indent=2, default=str)
    else:
        rows = [{**flat_row(str(it), r, est.data_.label_separator), **({"ood_score": r["ood_score"]} if ood_score else {})}
                for it, r in zip(data.items, recs)]
        text = pd.DataFrame(rows).to_csv(index=False)
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


@app.command()
def backbones() -> None:
    """List the catalog: aliases, what they resolve to, and which load offline here."""
    from headstart.backbones import CATALOG, available_offline

    typer.echo(f"{'alias':<20} {'modality':<8} {'offline':<8} {'licence':<14} spec")
    for alias, e in CATALOG.items():
        typer.echo(f"{alias:<20} {e.modality:<8} {'yes' if available_offline(alias) else 'no':<8} "
                   f"{e.license:<14} {e.spec}")
    typer.echo("\nAny timm:NAME, hf:NAME, torchvision:NAME or local:DIR works too; scratch:SPEC = random init.")


@app.command()
def compare(data: Path = typer.Argument(..., help="image folder (one subfolder per class), or CSV/JSONL"),
            backbone: str = typer.Option("auto", help="the pretrained backbone to judge"),
            task: str = typer.Option("auto", help="auto (from the labels) | classification | multilabel | regression"),
            task_param: list[str] = typer.Option([], "--task-param", help="task parameter key=value, e.g. "
                                                 "objective=huber (repeatable)"),
            label_sep: str = typer.Option("|", help="separator of several labels in one cell (multilabel)"),
            methods: Optional[str] = typer.Option(None, help="comma-separated subset of: majority (classification), "
                                                  "mean (regression), prior (multilabel), classic, scratch, "
                                                  "linear_probe, prototype (classification), mlp_head, fine_tuning"),
            sizes: str = typer.Option("all", help="training sizes, nested subsets, e.g. 50,100,500,all"),
            seeds: int = typer.Option(3, help="seeds per method and size"),
            test: Optional[Path] = typer.Option(None, help="explicit test data (else a stratified 20% split)"),
            out: Path = typer.Option(Path("headstart-compare"), help="directory for report.html + metrics.json"),
            image_size: Optional[int] = typer.Option(None),
            text_column: TextColumn = "text", path_column: PathColumn = "path",
            label_column: LabelColumn = "label",
            cache_dir: CacheDir = None,
            device: Device = None) -> None:
    """Did transfer help here, by how much, at what cost? Baselines and transfer recipes on the
    same splits, over seeds, with learning curves, in the task's own metric (accuracy, micro-F1,
    MAE); writes report.html and metrics.json."""
    from headstart.data.splits import stratified_split
    from headstart.evaluation.compare import (
        ComparisonError,
        run_comparison,
        subset_strata,
    )
    from headstart.evaluation.report import write_comparison_report

    cols = dict(text_column=text_column, path_column=path_column, label_column=label_column)
    if "," in label_column:
        typer.echo("error: compare takes one label column (multitask targets are compared one at a time)", err=True)
        raise typer.Exit(1)
    task_params = _parse_params(task_param)
    report, train, test_d, kind = _compare_data(data, test, cols, task, task_params, label_sep)
    if test_d is None:
        keep, held = stratified_split(subset_strata(kind, train.labels, label_sep), 0.2, 0)
        train, test_d = train.subset(keep.tolist()), train.subset(held.tolist())
    base = {"backbone": backbone, "task": kind if task == "auto" else task, "task_params": task_params or None,
            "preprocessing": {"image_size": image_size},
            "runtime": {"cache_dir": cache_dir, "device": device}, "data": {**cols, "label_separator": label_sep}}
    try:
        comp = run_comparison(train, test_d, base, methods=methods.split(",") if methods else None,
                              sizes=[s.strip() for s in sizes.split(",")], seeds=list(range(seeds)),
                              log=lambda m: typer.echo(m, err=True))
    except ComparisonError as e:  # found before any compute
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(comp.format())
    path = write_comparison_report(comp, test_d, out, title=f"headstart compare: {data.name} with {backbone}",
                                   data_report=report)
    typer.echo(f"report: {path}")


def _compare_data(data: Path, test: Path | None, cols: dict[str, str], task: str, task_params: dict[str, Any],
                  label_sep: str) -> tuple[Any, Any, Any, str]:
    """(pre-flight report, train, test or None, the task's kind) for ``compare``: the task
    detected from the labels and said aloud as ``fit`` does, the samples it cannot use skipped."""
    from headstart.data.sources import read_data
    from headstart.data.validate import DataError, check_data
    from headstart.evaluation.compare import resolve_task
    from headstart.tasks import build_task

    try:
        train = read_data(data, **cols)
        test_d = read_data(test, **cols) if test is not None else None
        kind, why = resolve_task(task, train.labels or [], label_sep)
        task_obj = build_task(task if task != "auto" else kind, **task_params)
        report, train, _, test_d = check_data(train, None, test_d, root=data if data.is_dir() else None,
                                              classes=kind == "classification",
                                              label_problem=getattr(task_obj, "label_problem", None))
    except (DataError, ValueError, FileNotFoundError, KeyError, TypeError) as e:
        typer.echo(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", err=True)
        raise typer.Exit(1) from None
    if why is not None and kind != "classification":
        typer.echo(why, err=True)
    if report.bad or report.warnings:
        typer.echo(report.format(), err=True)
    return report, train, test_d, kind


@app.command()
def plan(data: Path = typer.Argument(..., help="image folder (one subfolder per class), or CSV/JSONL"),
         backbone: str = typer.Option("auto", help="catalog alias or source:name"),
         budget: Optional[str] = typer.Option(None, help="time budget, e.g. 10m (default: none)"),
         rungs: Optional[str] = typer.Option(None, help="comma-separated subset of the ladder: linear_probe, "
                                             "prototype, zero_shot, mlp_head, partial_ft, contrastive, full_ft, "
                                             "lora (only when asked), scratch, tfidf, rocket, logmel (adaptation: "
                                             "feature_align, feature_align_st, dann, coral, mmd)"),
         margin: float = typer.Option(0.01, help="accuracy a costlier rung must add to be climbed"),
         out: Optional[Path] = typer.Option(None, help="also write the picked model's bundle here"),
         test: Optional[Path] = typer.Option(None, help="explicit test data (else a stratified split)"),
         image_size: Optional[int] = typer.Option(None), seed: int = typer.Option(0),
         text_column: TextColumn = "text", path_column: PathColumn = "path",
         label_column: LabelColumn = "label",
         cache_dir: CacheDir = None,
         device: Device = None,
         target_unlabeled: Optional[Path] = typer.Option(None, help="unlabeled inputs from the domain the model "
                                                         "will meet: adaptation rungs join the ladder, chosen "
                                                         "without target labels")) -> None:
    """Climb the ladder — linear probe, prototypes, MLP head, partial and full fine-tuning, and a
    from-scratch rung — cheap rungs by cross-validation, costly ones on a held-out fold, within the
    budget, and say which strategy to use and why. Text adds zero-shot (prompts of the class names,
    no training label; when the names are words) and contrastive body tuning (at most 64 examples
    per class); partial fine-tuning is skipped for text, asked for with --rungs (as is zero_shot for
    images, with a CLIP-style --backbone, and lora: LoRA adapters, which on CPU cost about a full
    fine-tune). With --target-unlabeled, adaptation rungs (feature alignment, DANN, CORAL, MMD) too, picked by
    information maximisation on the target."""
    started = time.perf_counter()  # the budget counts from here, the library's imports included
    from headstart.api import Headstart
    from headstart.config import Runtime
    from headstart.selection.planner import Planner

    est = Headstart(backbone=backbone, test_size=0.0 if test is None else 0.2, seed=seed,
                    preprocessing={"image_size": image_size}, runtime=Runtime(cache_dir=cache_dir, device=device),
                    run={"out": out}, data=_data_spec(text_column, path_column, label_column))
    Planner(est, budget=budget, margin=margin,
            rungs=[r.strip() for r in rungs.split(",") if r.strip()] if rungs else None).fit(
        data, test=test, unlabeled=target_unlabeled, spent=time.perf_counter() - started)
    if out:
        typer.echo(f"bundle: {out}")


@app.command()
def rank(data: Path = typer.Argument(..., help="image folder (one subfolder per class), or CSV/JSONL"),
         backbones: str = typer.Option(..., help="comma-separated candidates, e.g. efficientnet_lite0,scratch:efficientnet_lite0"),
         scores: str = typer.Option("logme,knn,h_score,leep,nce", help="scores to compute"),
         by: str = typer.Option("logme", help="the score that decides the pick"),
         max_samples: int = typer.Option(2000, help="stratified subsample size (0: all)"),
         image_size: Optional[int] = typer.Option(None), max_length: Optional[int] = typer.Option(None),
         text_column: TextColumn = "text", path_column: PathColumn = "path",
         label_column: LabelColumn = "label",
         cache_dir: CacheDir = None,
         device: Device = None,
         json_out: Optional[Path] = typer.Option(None, "--json", help="also write the table as JSON here"),
         no_memo: bool = typer.Option(False, "--no-memo", help="rank again even when the same question was answered "
                                      "(the feature and score caches are still used)")) -> None:
    """Rank pretrained backbones by transferability scores on frozen features (cached: a second
    call on the same data does not run the backbones; an identical question is answered from the
    rank memo without loading anything)."""
    from headstart._files import default_cache_dir
    from headstart.selection.memo import RankMemo, memo_key

    names = [b.strip() for b in backbones.split(",") if b.strip()]
    score_names = [s.strip() for s in scores.split(",") if s.strip()]
    params = dict(data=str(data.resolve()), backbones=names, scores=score_names, by=by, max_samples=max_samples,
                  image_size=image_size, max_length=max_length, text_column=text_column, path_column=path_column,
                  label_column=label_column, device=device)
    memo = RankMemo(cache_dir or default_cache_dir())
    key = None if no_memo else memo_key(data, params)
    hit = memo.get(key) if key else None
    if hit is not None:
        result, stored = hit
        if stored.get("data_report"):
            typer.echo(stored["data_report"], err=True)
        for row in result.rows:
            row.reused, row.feature_seconds, row.score_seconds = True, 0.0, 0.0
        typer.echo(result.format())
        typer.echo("answered from the rank memo (same files, candidates, settings and installed packages as an "
                   "earlier ranking); --no-memo ranks again", err=True)
    else:
        result = _rank_now(data, params, cache_dir, memo, key)
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))
    if result.pick is None:
        raise typer.Exit(1)


def _rank_now(data: Path, params: dict[str, Any], cache_dir: Optional[Path], memo: Any, key: Optional[str]) -> Any:
    """The full ranking with the rank call's ``params`` (feature and score caches reused); kept in
    the memo when the data did not change while it ran."""
    from headstart.data.sources import read_data
    from headstart.data.validate import DataError, check_data
    from headstart.selection import rank_backbones
    from headstart.selection.memo import memo_key

    try:
        train = read_data(data, text_column=params["text_column"], path_column=params["path_column"],
                          label_column=params["label_column"])
        report, train, _, _ = check_data(train, root=data if data.is_dir() else None)
    except (DataError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    data_report = report.format() if report.bad else ""
    if data_report:
        typer.echo(data_report, err=True)
    result = rank_backbones(train, params["backbones"], scores=params["scores"], by=params["by"],
                            max_samples=params["max_samples"] or None, image_size=params["image_size"],
                            max_length=params["max_length"], cache_dir=cache_dir, device=params["device"],
                            log=lambda m: typer.echo(m, err=True))
    typer.echo(result.format())
    if key is not None and memo_key(data, params) == key:
        memo.put(key, result, data_report)
    return result


SHIFT_OUT = Path("headstart-shift")


@app.command()
def shift(source: Annotated[Path, typer.Argument(help="the training data: image folder (class subfolders or flat), "
                                                 "or CSV/JSONL; labels are not needed")],
          target: Annotated[Path, typer.Argument(help="the data the model will meet, unlabeled: a folder of images "
                                                 "(flat, or nested with any names: ignored), or a CSV/JSONL of "
                                                 "paths or texts")],
          backbone: Annotated[str, typer.Option(help="catalog alias or source:name; auto = efficientnet_lite0 "
                                                "for images, minilm for texts")] = "auto",
          out: Annotated[Path, typer.Option(help="directory for shift.json and the PCA plot")] = SHIFT_OUT,
          permutations: Annotated[int, typer.Option(help="permutations of the MMD two-sample test; "
                                                    "p is at least 1/(1+N)")] = 1000,
          max_samples: Annotated[int, typer.Option(help="inputs used per domain, a seeded subsample "
                                                   "(0: all, up to 10000 each)")] = 1000,
          alpha: Annotated[float, typer.Option(help="level of the test: p below it is called a shift")] = 0.05,
          seed: Annotated[int, typer.Option(help="seed of the subsamples, folds and permutations")] = 0,
          plot_format: Annotated[str, typer.Option(help="png | svg")] = "png",
          image_size: Annotated[int | None, typer.Option(help="input size (default: from the source)")] = None,
          max_length: Annotated[int | None, typer.Option(help="max tokens for text")] = None,
          text_column: TextColumn = "text", path_column: PathColumn = "path", label_column: LabelColumn = "label",
          on_bad_sample: Annotated[str, typer.Option(help="skip (list every skipped file) | fail")] = "skip",
          cache_dir: CacheDir = None, device: Device = None,
          as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Does TARGET differ from SOURCE? On frozen backbone features (cached): a domain classifier's
    cross-validated accuracy (proxy A-distance) and an MMD two-sample test with a permutation
    p-value, a plain verdict, and a PCA plot of both domains. Exit status 0 either way."""
    from headstart.adaptation.detect import detect_shift
    from headstart.data.validate import DataError

    if plot_format not in ("png", "svg"):
        raise typer.BadParameter("--plot-format must be png or svg")
    columns = {"text_column": text_column, "path_column": path_column, "label_column": label_column}
    try:
        report = detect_shift(source, target, backbone=backbone, out=out, permutations=permutations,
                              max_samples=max_samples or None, alpha=alpha, seed=seed, on_bad_sample=on_bad_sample,
                              columns=columns, image_size=image_size, max_length=max_length, cache_dir=cache_dir,
                              device=device, plot_format=plot_format, log=lambda m: typer.echo(m, err=True))
    except (DataError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    typer.echo(f"written: {out / 'shift.json'}, {out / f'shift.{plot_format}'}", err=True)


@app.command()
def zeroshot(data: Path = typer.Argument(..., help="what to classify (and calibrate on): a CSV/TSV/JSONL of texts "
                                         "or of image paths, or an image folder (flat, or one subfolder per "
                                         "class); labels, if present, only score the result"),
             labels: str = typer.Option(..., help="the classes: 'positive,negative', 'fresh: a positive review,"
                                        "rotten: a negative review', or a .txt (one per line, 'label: description' "
                                        "optional) / .json {label: description} file"),
             template: list[str] = typer.Option([], "--template", help="prompt with a {label} slot, e.g. 'This "
                                                "review is {label}.' (repeatable: averaged; default: a generic set; "
                                                "images: 'a photo of a {label}.' and CLIP's 7 ImageNet templates)"),
             backbone: str = typer.Option("mpnet", help="texts: a sentence encoder (mpnet, minilm, hf:NAME); images: "
                                          "a CLIP-style dual encoder (hf:openai/clip-vit-base-patch32, "
                                          "hf:google/siglip-base-patch16-224, open_clip:ViT-B-32/laion2b_s34b_b79k)"),
             no_calibrate: bool = typer.Option(False, "--no-calibrate", help="keep the raw similarities (no "
                                               "per-class centring on DATA's inputs)"),
             no_self_train: bool = typer.Option(False, "--no-self-train", help="no probe on the surest inputs"),
             out: Path = typer.Option(Path("headstart-zeroshot"), help="bundle directory to write"),
             text_column: TextColumn = "text", path_column: PathColumn = "path", label_column: LabelColumn = "label",
             batch_size: int = typer.Option(64), seed: int = typer.Option(0),
             cache_dir: CacheDir = None, device: Device = None, quiet: bool = typer.Option(False)) -> None:
    """Classify texts or images with no labeled examples: similarity to prompts made from the class
    names or descriptions (averaged over templates), calibrated and self-trained on DATA's own
    inputs; writes a bundle predict/serve use."""
    from headstart.zeroshot import zero_shot

    try:
        zero_shot(data, labels, templates=template or None, backbone=backbone, calibrate=not no_calibrate,
                  self_train=not no_self_train, out=out, seed=seed, verbose=not quiet,
                  runtime={"device": device, "batch_size": batch_size, "cache_dir": cache_dir},
                  data_spec={"text_column": text_column, "path_column": path_column, "label_column": label_column})
    except (ValueError, FileNotFoundError, KeyError, ImportError) as e:  # bad input, unknown backbone, no open_clip
        typer.echo(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", err=True)
        raise typer.Exit(1) from None
    if not quiet:
        typer.echo(f"next:\n  headstart predict {out} INPUTS --out predictions.csv\n  headstart serve {out}")


@app.command()
def serve(bundles: list[Path] = typer.Argument(..., help="bundle folders written by fit"),
          name: list[str] = typer.Option([], "--name", help="a name per bundle, in order (default: the folder's name)"),
          host: str = typer.Option("127.0.0.1", help="0.0.0.0 to listen on every interface"),
          port: int = typer.Option(8000),
          api_key_file: Optional[Path] = typer.Option(None, help="a file holding the API key that /v1/ requests "
                                                      "must send (Authorization: Bearer KEY or X-API-Key)"),
          max_batch: int = typer.Option(32, help="most inputs in one micro-batched forward pass"),
          max_wait_ms: float = typer.Option(5.0, help="how long a request waits for others to join its batch"),
          max_items: int = typer.Option(64, help="most inputs in one request"),
          max_request_mb: float = typer.Option(32.0, help="largest request body"),
          max_audio_seconds: int = typer.Option(600, help="longest sound file an audio model accepts"),
          workers: int = typer.Option(1, help="server processes (each loads its own copy of every model)"),
          device: Device = None) -> None:
    """Serve bundles over HTTP: POST /v1/models/NAME/predict, GET /v1/models, a web page at /, docs at /docs."""
    from headstart.serving.run import ServeConfig, run_server

    try:
        config = ServeConfig.from_cli(bundles, name, api_key_file=api_key_file, max_batch=max_batch,
                                      max_wait_ms=max_wait_ms, max_items=max_items,
                                      max_request_bytes=int(max_request_mb * 2**20),
                                      max_audio_seconds=max_audio_seconds, device=device)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    run_server(config, host=host, port=port, workers=workers)


@app.command()
def export(bundle: Path = typer.Argument(..., help="a bundle folder written by fit"),
           format: str = typer.Option("onnx", help="onnx"),
           out: Path = typer.Option(..., help="folder to write model.onnx, export.json and predict.py into"),
           data: Optional[Path] = typer.Option(None, help="inputs to check parity on (a folder of images or a "
                                               "CSV/JSONL); without it the check uses random inputs"),
           n: int = typer.Option(256, help="how many of --data to check parity on"),
           int8: bool = typer.Option(False, help="also write model.int8.onnx (onnxruntime quantizer: dynamic for "
                                                 "text, static QDQ calibrated on the first 64 of --data for images) "
                                                 "and make predict.py run it")) -> None:
    """Export a bundle's model to ONNX (dynamic batch axis) and check it against the bundle."""
    from headstart.api import load

    if format != "onnx":
        raise typer.BadParameter(f"format {format!r}: only onnx is supported")
    est = load(bundle, device="cpu")
    sample = None
    try:
        if data is not None:
            sample = _inputs(est, [str(data)])
        from headstart.export.onnx import export_onnx

        sample = sample if sample is None else sample.subset(range(min(n, len(sample))))
        path, parity = export_onnx(est, out, sample, source=bundle)
        typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB), {out / 'export.json'}, {out / 'predict.py'}")
        typer.echo(parity.format())
        if int8:
            from headstart.export.quantize import quantize_export

            path, parity = quantize_export(est, out, sample)
            typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, int8); int8 {parity.format()}")
            if parity.argmax_agreement < 0.995:
                typer.echo("warning: int8 argmax agreement with the bundle is below 99.5%; measure its accuracy "
                           "before using it (model.onnx, fp32, is kept next to it)")
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"run it without headstart: python {out / 'predict.py'} INPUT ...  (onnxruntime, numpy, pillow"
               + (", tokenizers)" if est.modality_ == "text" else ")"))
    typer.echo(f"or with headstart, like a bundle: headstart predict {out} INPUT ...  (headstart.load reads it)")


@app.command()
def demo(data: Optional[Path] = typer.Option(None, help="examples folder (default: the repository's)"),
         modality: str = typer.Option("both", help="image | text | both")) -> None:
    """Offline demo on shipped data: transfer vs from-scratch, accuracy and time."""
    from headstart.demo import run_demo

    run_demo(data, modality)


@app.command()
def distill(teacher: Path = typer.Argument(..., help="the teacher: a bundle folder written by fit"),
            student: str = typer.Option(..., help="the student backbone: a smaller catalog backbone (minilm for an "
                                                  "mpnet teacher), tiny:small_cnn (images, from scratch), or "
                                                  "tfidf:1-2 (text: TF-IDF + a linear head, the fast CPU student)"),
            data: Path = typer.Option(..., help="labeled training data: image folder (one subfolder per class), "
                                                "or CSV/JSONL"),
            unlabeled: Optional[Path] = typer.Option(None, help="extra unlabeled inputs (a folder or CSV/JSONL): "
                                                                "the student learns the teacher's outputs on them too"),
            test: Optional[Path] = typer.Option(None, help="labeled test data both models are measured on "
                                                           "(else a held-out split of --data)"),
            out: Path = typer.Option(Path("headstart-distilled"), help="student bundle directory to write"),
            temperature: float = typer.Option(2.0, help="softmax temperature T of both models' outputs"),
            alpha: float = typer.Option(0.5, help="weight of the soft (teacher) term; 1 - alpha weighs the true "
                                                  "labels (unlabeled inputs have the soft term only)"),
            strategy: Optional[str] = typer.Option(None, help="default: from scratch for tiny:/scratch:, a head on "
                                                              "TF-IDF features, else auto; fine_tuning tunes a "
                                                              "pretrained text student whole on the teacher's outputs "
                                                              "(lr 1e-4, batch 32, 2 epochs; change with --param)"),
            param: list[str] = typer.Option([], "--param", "-p", help="strategy parameter key=value (repeatable)"),
            batch_size: int = typer.Option(32), seed: int = typer.Option(0),
            text_column: TextColumn = "text", path_column: PathColumn = "path", label_column: LabelColumn = "label",
            cache_dir: CacheDir = None, device: Device = None, quiet: bool = typer.Option(False)) -> None:
    """Distill a fitted bundle into a smaller, faster student (Hinton et al. 2015).

    The student trains on alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) *
    cross-entropy on the true labels, over --data and the --unlabeled inputs (soft term only);
    the teacher runs once per input. Writes a normal bundle with its lineage (teacher, T, alpha)."""
    from headstart.compression.distill import distill as run_distill

    params: dict[str, Any] = {"seed": seed, "verbose": not quiet,
                              "runtime": {"batch_size": batch_size, "cache_dir": cache_dir},
                              "data_spec": _data_spec(text_column, path_column, label_column)}
    if strategy is not None:
        params["strategy"] = strategy
    if strategy is not None or param:
        params["strategy_params"] = _parse_params(param) or None
    try:
        bundle = _interruptible(lambda: run_distill(teacher, student, data, unlabeled, out, test=test,
                                                    temperature=temperature, alpha=alpha, device=device, **params))
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    meta = json.loads((bundle / "headstart.json").read_text())
    step, acc = meta["lineage"][-1], meta["metrics"].get("test", {}).get("accuracy")
    if acc is not None and "teacher_test_accuracy" in step:
        typer.echo(f"test accuracy: teacher {step['teacher_test_accuracy']:.4f}, student {acc:.4f}")
    typer.echo(f"teacher ran once on {step['teacher_inputs']} inputs")
    _next_steps(bundle, meta["modality"])


@app.command()
def compress(bundle: Path = typer.Argument(..., help="a bundle folder written by fit"),
             data: Path = typer.Option(..., help="labeled evaluation data (image folder or CSV/JSONL): every "
                                                 "model is measured on it"),
             out: Path = typer.Option(..., help="folder for one model per step (DIR/<step>/), compress.json, "
                                                "frontier.png and report.html"),
             target: str = typer.Option("accuracy", help="what the recommendation optimises: accuracy | size | "
                                                         "latency (size/latency: within --tolerance of the original)"),
             steps: Optional[str] = typer.Option(None, help="comma-separated: int8, fp16, bf16, pruned, sparse, "
                                                            "distilled (default: int8,fp16, plus pruned with "
                                                            "--train)"),
             train: Optional[Path] = typer.Option(None, help="the training data: pruning recovers on it, int8 "
                                                             "calibrates on it"),
             tolerance: float = typer.Option(1.0, help="accuracy points a smaller/faster model may lose"),
             flops_reduction: float = typer.Option(0.5, help="pruned: fraction of FLOPs to remove"),
             sparsity: float = typer.Option(0.5, help="sparse: fraction of backbone weights set to zero"),
             prune_steps: int = typer.Option(3, help="pruning rounds, each followed by a recovery fine-tune"),
             recover_steps: int = typer.Option(100, help="optimizer steps of each recovery fine-tune"),
             final_recover_steps: Optional[int] = typer.Option(None, help="pruned/sparse: optimizer steps of the "
                                                                         "last round's recovery (default: "
                                                                         "--recover-steps)"),
             student: Optional[str] = typer.Option(None, help="distilled: the student backbone (default "
                                                            "tiny:small_cnn for images, tfidf:1-2 for text)"),
             unlabeled: Optional[Path] = typer.Option(None, help="distilled (and pruned/sparse with --distill): extra "
                                                                "unlabeled inputs the student learns the teacher's "
                                                                "outputs on"),
             distill: bool = typer.Option(False, help="pruned/sparse: recover by distillation from the original "
                                                      "bundle (its softened outputs on --train and --unlabeled)"),
             recover_lr: float = typer.Option(1e-4, help="pruned/sparse: learning rate of the recovery fine-tunes"),
             layer_decay: float = typer.Option(0.7, help="pruned/sparse: per-layer-group learning-rate decay of "
                                                         "the recovery (1: every layer at --recover-lr)"),
             keep: Optional[str] = typer.Option(None, help="pruned: comma-separated name patterns (fnmatch, in the "
                                                          "backbone) of layers left whole with their coupled "
                                                          "channels, e.g. 'model.conv_stem,*.conv_pwl'"),
             importance: str = typer.Option("l2", help="pruned: channel ranking: l2 | l1 | bn_scale"),
             recalibrate: int = typer.Option(0, help="pruned/sparse: inputs (--train, then --unlabeled) that "
                                                     "re-estimate the BatchNorm statistics after each round")) -> None:
    """Compress a bundle (int8, fp16/bf16, pruning) and compare each result with it: accuracy, size, latency."""
    from headstart.compression.compress import compress as run_compress

    options = {"flops_reduction": flops_reduction, "sparsity": sparsity, "prune_steps": prune_steps,
               "recover_steps": recover_steps, "final_recover_steps": final_recover_steps, "student": student, "unlabeled": unlabeled, "distill": distill,
               "lr": recover_lr, "layer_decay": layer_decay, "importance": importance, "recalibrate": recalibrate,
               "keep": [k.strip() for k in keep.split(",") if k.strip()] if keep else []}
    try:
        run_compress(bundle, data, out, [s.strip() for s in steps.split(",") if s.strip()] if steps else None,
                     target, train, tolerance / 100, options, echo=typer.echo)
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.echo(f"error: {e.args[0] if isinstance(e, KeyError) else e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out / 'compress.json'}, {out / 'frontier.png'}, {out / 'report.html'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
