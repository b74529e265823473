"""The estimator users hold (scikit-learn contract): the constructor stores parameters, ``fit``
learns, fitted state ends in ``_``; ``predict`` / ``predict_proba`` / ``evaluate`` / ``save``;
``load`` reads a bundle back into the same kind of object.

What is learned is the task's (``headstart.tasks``: classification, multilabel, regression,
multitask, or a user's own); which parameters train is the strategy's; the loop is the one
trainer's (``headstart.training``)."""
from __future__ import annotations

import importlib.util
import inspect
import os
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from headstart.adaptation.batchnorm import adapt_batchnorm, batchnorm_layers
from headstart.adaptation.summary import read_target_test, record_final, summarise_adaptation
from headstart.backbones.prepare import (
    prepare_backbone,
    resampling_note,
    resolve_device,
    series_note,
    window_note,
)
from headstart.config import DataSpec, RunOptions, Runtime
from headstart.data._base import LabeledData
from headstart.data.loaders import make_loader
from headstart.data.sources import from_sequences, read_data
from headstart.data.splits import stratified_split
from headstart.data.unlabeled import read_unlabeled
from headstart.data.validate import check_data
from headstart.export.bundle import load_tensors, save_bundle
from headstart.export.card import model_card
from headstart.export.onnx_model import load_model
from headstart.features.cache import FeatureCache
from headstart.heads import build_head
from headstart.model import TransferModel
from headstart.recipes import DEFAULT_BACKBONES
from headstart.strategies import (
    STRATEGIES,
    FeatureExtraction,
    Strategy,
    build_strategy,
    choose,
)
from headstart.strategies.auto import contrastive_default, few_label_text_pooling
from headstart.strategies.lora import merge_lora
from headstart.tasks import TASKS, Task, build_task, detect_task, task_from_state
from headstart.tasks.adaptation import ADAPTATION_METHODS
from headstart.training.context import FitContext, Split
from headstart.training.loop import predict_outputs
from headstart.training.trainer import Trainer

CONFIGS = {"runtime": Runtime, "run": RunOptions, "data": DataSpec}


def _is_existing_path(source: str | Path) -> bool:
    try:
        return Path(source).exists()
    except OSError:  # e.g. a long text is not a file name
        return False


def make_accelerator(device: str | None = None, mixed_precision: str = "auto",
                     compile: bool = False, log_dir: str | Path | None = None) -> Accelerator:
    """CPU unless a GPU is present (or ``device`` says otherwise); bf16 autocast on GPUs that
    support it, fp16 on older ones, none on CPU. ``compile``: torch.compile (inductor) through
    Accelerate, opt-in. ``log_dir``: run logs as TensorBoard event files there (and MLflow)."""
    cpu = device == "cpu" or not torch.cuda.is_available()
    if mixed_precision == "auto":
        mixed_precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    trackers = None
    if log_dir is not None:
        trackers = ["tensorboard"] + (["mlflow"] if importlib.util.find_spec("mlflow") else [])
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision, dynamo_backend="inductor" if compile else "no",
                       log_with=trackers, project_dir=str(log_dir) if log_dir is not None else None)


def auto_workers(modality: str, n: int) -> int:
    """DataLoader workers for ``num_workers='auto'``: images decode in parallel with the model
    (one core left to it), as does audio; texts are tokenized once up front and need none."""
    if modality not in ("image", "audio") or n < 256:
        return 0
    return int(min(8, max(0, (os.cpu_count() or 1) - 1)))


def _named_params(obj: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters of a component given as an instance, or as a name with a params dict."""
    return obj.get_params() if hasattr(obj, "get_params") else dict(params or {})


class Headstart:
    """Adapt a pretrained backbone to labeled data.

    ``backbone``, ``head``, ``strategy`` and ``task`` are names (with ``*_params``) or instances;
    ``preprocessing`` is ``{"image_size", "max_length", "multiscale", "max_seconds", "pooling"}`` (text
    pooling: ``mean``, ``cls``, ``mean_last_half``). With no test set given,
    ``test_size`` of the data is held out to measure the model; ``final_fit="all"`` (default) then
    trains it again on every labeled example and returns that one (the metrics say so),
    ``"split"`` returns the model that was measured. The rest lives in
    ``runtime`` (``Runtime``), ``run`` (``RunOptions``) and ``data`` (``DataSpec``), each a
    config object or a plain dict.

    >>> clf = Headstart(backbone="efficientnet_lite0").fit("photos/")   # doctest: +SKIP
    >>> clf.predict(["new.jpg"])                                        # doctest: +SKIP
    """

    def __init__(self, backbone: str = "auto", strategy: "str | Strategy" = "auto", head: str = "linear",
                 task: "str | Task" = "auto", head_params: dict[str, Any] | None = None,
                 strategy_params: dict[str, Any] | None = None, task_params: dict[str, Any] | None = None,
                 adapt: str | None = None, preprocessing: dict[str, Any] | None = None, balance: str | None = "auto",
                 val_size: float | str = "auto", test_size: float = 0.2, final_fit: str = "all", seed: int = 0,
                 warm_start: bool = False,
                 runtime: Runtime | dict[str, Any] | None = None, run: RunOptions | dict[str, Any] | None = None,
                 data: DataSpec | dict[str, Any] | None = None, verbose: bool = True) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.head = head
        self.task = task
        self.head_params = head_params
        self.strategy_params = strategy_params
        self.task_params = task_params
        self.adapt = adapt
        self.preprocessing = preprocessing
        self.balance = balance
        self.val_size = val_size
        self.test_size = test_size
        self.final_fit = final_fit
        self.seed = seed
        self.warm_start = warm_start
        self.runtime = runtime
        self.run = run
        self.data = data
        self.verbose = verbose

    # -- scikit-learn's parameter protocol ----------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters; with ``deep``, also ``strategy__lr``-style nested ones (the
        strategy's, head's and task's parameters, and the config objects' fields)."""
        out = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}
        if deep:
            for name in ("strategy", "head", "task"):
                for k, v in _named_params(out[name], out[f"{name}_params"]).items():
                    out[f"{name}__{k}"] = v
            for name, cls in CONFIGS.items():  # without validating (get_params never raises)
                value = out[name]
                given = value if isinstance(value, dict) else (vars(value) if value is not None else {})
                for f in fields(cls):
                    out[f"{name}__{f.name}"] = given.get(f.name, f.default)
        return out

    def set_params(self, **params: Any) -> "Headstart":
        """scikit-learn's setter: constructor parameters, and nested ones (``strategy__lr=1e-4``,
        ``runtime__device="cpu"``); returns self."""
        known = self.get_params(deep=False)
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in known:
                raise ValueError(f"unknown parameter {key!r}; known: {', '.join(known)}")
            if not sub:
                setattr(self, name, value)
            elif name in CONFIGS:
                setattr(self, name, CONFIGS[name].coerce(getattr(self, name)).replace(**{sub: value}))
            elif hasattr(getattr(self, name), "set_params"):
                getattr(self, name).set_params(**{sub: value})
            elif f"{name}_params" in known:
                setattr(self, f"{name}_params", {**(getattr(self, f"{name}_params") or {}), sub: value})
            else:
                raise ValueError(f"{name!r} has no nested parameters ({key!r})")
        return self

    @property
    def runtime_(self) -> Runtime:
        return Runtime.coerce(self.runtime)

    @property
    def run_(self) -> RunOptions:
        return RunOptions.coerce(self.run)

    @property
    def data_(self) -> DataSpec:
        return DataSpec.coerce(self.data)

    def _prep(self, key: str, default: Any = None) -> Any:
        return (self.preprocessing or {}).get(key, default)

    def _log(self, msg: str) -> None:
        acc = getattr(self, "accelerator_", None)
        if self.verbose and (acc is None or acc.is_main_process):
            print(msg, flush=True)

    # -- data --------------------------------------------------------------------------
    def _read(self, source: Any, labels: Sequence[Any] | None = None, modality: str | None = None) -> LabeledData:
        """A folder/file path, LabeledData, an (X, y) tuple, a sequence of items, or one item."""
        if isinstance(source, LabeledData):
            return source
        if isinstance(source, (str, Path)) and labels is None:
            if _is_existing_path(source):
                return read_data(source, **self.data_.columns)
            if isinstance(source, Path) or modality != "text":
                raise FileNotFoundError(f"{source}: no such file or folder")
            return from_sequences([source], None, modality)  # one text
        if isinstance(source, tuple) and len(source) == 2 and labels is None:  # (X, y) for val/test
            return from_sequences(source[0], source[1], modality)
        return from_sequences(source, labels, modality)

    def _resolve_task(self, data: LabeledData) -> Task:
        """The task as given, or detected from the labels (said aloud); ``adapt`` names an
        adaptation task (a classifier trained with the unlabeled target stream)."""
        params = dict(self.task_params or {})
        if self.adapt is not None and self.adapt != "adabn":
            if self.adapt not in ADAPTATION_METHODS:
                raise ValueError(f"unknown adapt={self.adapt!r}; known: {', '.join(ADAPTATION_METHODS)}")
            if self.task not in ("auto", "classification", self.adapt):
                raise ValueError(f"adapt={self.adapt!r} adapts a classifier; it does not combine with task={self.task!r}")
            if self.adapt == "auto":  # never silently worse: source-only unless the label-free criterion prefers
                return build_task("feature_align", **{"choose": True, "self_training": 3, **params})
            return build_task(self.adapt, **params)
        if self.task != "auto":
            if isinstance(self.task, str) and "," not in self.task and self.task not in TASKS:
                raise ValueError(f"unknown task {self.task!r}; known: {', '.join(TASKS.list())}")
            if isinstance(self.task, str) and "," in self.task:
                params.setdefault("names", self.data_.label_columns)
            task = build_task(self.task, **params)
        elif len(self.data_.label_columns) > 1:
            raise ValueError(f"several label columns {self.data_.label_columns}: say which task each is, e.g. "
                             "task='classification,regression'")
        else:
            name, why = detect_task(data.labels or [], self.data_.label_separator)
            if name != "classification":
                self._log(why)
            task = build_task(name, **params)
        if getattr(task, "separator", None) is not None and "separator" not in params:
            task.separator = self.data_.label_separator
        return task

    def _splits(self, data: LabeledData, val: Any, test: Any,
                early_stopping: bool) -> tuple[LabeledData, LabeledData | None, LabeledData | None]:
        """Explicit val/test, else seeded splits (stratified for classes). A validation split is
        held out only for early stopping, and only from 1000 examples up."""
        test_data = self._read(test, modality=data.modality) if test is not None else None
        val_data = self._read(val, modality=data.modality) if val is not None else None
        strat = data.labels if self.task_.proba == "softmax" else None
        train = data
        if test_data is None and self.test_size:
            keep, held = stratified_split(strat if strat is not None else [0] * len(train), self.test_size, self.seed)
            train, test_data = train.subset(keep), train.subset(held)
            self._log(f"no test set given: held out {'a stratified ' if strat else ''}{self.test_size:.0%} "
                      f"({len(test_data)} items)")
        if val_data is None:
            frac = self.val_size
            if frac == "auto":
                frac = 0.1 if early_stopping and len(train) >= 1000 else 0.0
            if frac:
                labels = train.labels if strat is not None else [0] * len(train)
                keep, held = stratified_split(labels, float(frac), self.seed + 1)
                train, val_data = train.subset(keep), train.subset(held)
        return train, val_data, test_data

    def _split(self, data: LabeledData | None, what: str) -> Split | None:
        if data is None:
            return None
        if data.labels is None:
            raise ValueError(f"{what}: no labels (column {self.data_.label_column!r} missing?)")
        return Split(data, self.task_.encode(data.labels, data.origins, what))

    # -- fit ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Sequence[Any] | None = None, *, val: Any = None, test: Any = None,
            unlabeled: Any = None, target_test: Any = None, teacher: Any = None) -> "Headstart":
        """Learn from X (a folder, CSV/JSONL file, or a sequence of images/texts with labels y).
        ``val``/``test``: optional explicit splits in the same forms; ``unlabeled``: inputs
        without labels for tasks that use them. With ``adapt``, ``target_test``: labeled data from
        the target domain for evaluation only (its labels never train or choose anything), so
        ``adaptation_`` and the report show source-only against adapted accuracy there and the
        oracle pick beside the label-free one. ``teacher``: for ``task='distillation'``, a
        ``headstart.tasks.distillation.TeacherLogits`` (``headstart distill`` builds one from a bundle);
        ``unlabeled`` inputs then join the transfer set (soft targets only).

        To choose the strategy by measurement within a time budget, wrap the estimator in the
        planner: ``headstart.Planner(Headstart(...), budget="10m").fit(X)``."""
        t0 = time.perf_counter()
        if self.strategy == "plan":
            raise ValueError("strategy='plan' is the planner's job: headstart.Planner(Headstart(...), "
                             "budget='10m').fit(data) (CLI: headstart fit --budget 10m, or headstart plan)")
        if self.adapt is not None and unlabeled is None:
            raise ValueError(f"adapt={self.adapt!r} needs the target domain's inputs: fit(..., unlabeled=...)")
        if target_test is not None and self.adapt is None:
            raise ValueError("target_test evaluates an adaptation: give adapt=... and unlabeled=... too")
        self._teacher = teacher
        data = self._read(X, y)
        if len(data) == 0:
            raise ValueError("the dataset is empty")
        if data.labels is None:
            raise ValueError(f"no labels found (expected a {self.data_.label_column!r} column, class folders, or y)")
        prev = getattr(self, "task_", None) if self.warm_start else None
        self.task_ = self._resolve_task(data)
        # a warm start continues the encoder the previous fit chose
        self.backbone_choice_ = getattr(self, "backbone_choice_", None) if self.warm_start else None
        data, val, test = self._preflight(X, data, val, test)
        if unlabeled is not None:
            unlabeled = read_unlabeled(unlabeled, **self.data_.columns, modality=data.modality)
            if self.run_.check_shift:
                self._check_shift(data, unlabeled)
        self.task_.fit_targets(data.labels)
        self._set_classes()
        self.modality_ = data.modality
        target_test = read_target_test(self, target_test, data.modality) if target_test is not None else None
        # the strategy suits the returned model: trained on every label (final_fit='all') or on the split
        n_fit = int(len(data) * (1 - self.test_size)) if test is None and self.final_fit == "split" else len(data)
        self.strategy_, self.strategy_reason_ = self._resolve_strategy(data.modality, n_fit)
        early_stopping = not self.strategy_.frozen_backbone and self.task_.head_after_body() is None
        train, val_data, test_data = self._splits(data, val, test, early_stopping)
        train, val_data = self._choose_backbone(train, val_data, carved=val is None, n_fit=n_fit)
        self._few_shot_body(data, n_fit)
        self.pooling_ = self._default_pooling(data.modality, n_fit)
        if self.pooling_ == "mean_last_half" and self._prep("pooling") is None:
            self.strategy_reason_ += ("; features: the last half of the encoder's layers averaged, then the mean "
                                      "over tokens (measured above the last layer alone at this size)")
        if self.final_fit not in ("all", "split"):
            raise ValueError(f"final_fit must be 'all' or 'split', got {self.final_fit!r}")
        set_seed(self.seed)
        model = self._build_model(train, prev, unlabeled)
        self.history_ = self._train(model, train, val_data, unlabeled, "checkpoints")
        self.splits_ = {"train": train, "val": val_data, "test": test_data}
        self._measure(val_data, test_data, len(train))
        if self.backbone_choice_ is not None:
            self.metrics_["backbone_choice"] = self.backbone_choice_.to_dict()
        self.adaptation_ = (summarise_adaptation(self, unlabeled, target_test)
                            if self.adapt is not None and self.run_.check_shift else None)
        if test is None and test_data is not None and self.final_fit == "all" and not self._warm:
            self._fit_on_all(train, val_data, test_data, unlabeled)
            if self.adaptation_ is not None:
                record_final(self.adaptation_, self, target_test)
        if self.run_.reference:
            self._keep_reference(data, unlabeled)
        else:
            self.reference_ = None
        self.fit_seconds_ = self.metrics_["fit_seconds"] = time.perf_counter() - t0
        self._write()
        return self

    def fit_head(self, data: LabeledData, backbone: Any, cache: Any) -> "Headstart":
        """``fit`` with a frozen-backbone strategy on a backbone already built and prepared for
        ``data`` (labeled, already checked: no pre-flight, no splits), its features from ``cache``
        (``features(backbone, data)``, as ``FeatureCache``): only the head is fitted, as ``fit``
        fits it (set the seed, or the RNG as building the backbone left it, before: a head's
        initial weights are drawn). The planner cross-validates its cheap rungs this way, on
        one backbone and its features held in memory for every fold. No feature reference
        is kept (``_keep_reference``: predict then checks nothing) and nothing is written."""
        t0 = time.perf_counter()
        self.task_ = self._resolve_task(data)
        self.backbone_choice_, self._teacher, self.data_report_ = None, None, None
        self.task_.fit_targets(data.labels)
        self._set_classes()
        self.modality_ = data.modality
        self.strategy_, self.strategy_reason_ = self._resolve_strategy(data.modality, len(data))
        if not self.strategy_.frozen_backbone:
            raise ValueError(f"fit_head fits a head on a frozen backbone; strategy {self.strategy_.name} trains it")
        head = build_head(self.head, backbone.num_features, self.task_.num_outputs, **(self.head_params or {}))
        model = TransferModel(backbone, head, self.task_.modules(backbone.num_features))
        self.history_ = self._train(model, data, None, None, "checkpoints", cache=cache)
        self.splits_ = {"train": data, "val": None, "test": None}
        self._measure(None, None, len(data))
        self.reference_ = None
        self.fit_seconds_ = self.metrics_["fit_seconds"] = time.perf_counter() - t0
        return self

    def _keep_reference(self, data: LabeledData, target: LabeledData | None) -> None:
        """``reference_``: the pooled features of up to 256 inputs the model is for (the unlabeled
        target's when it was adapted to it, else the labeled data's), for ``predict``'s input check."""
        from headstart.adaptation.reference import MAX_ROWS, FeatureReference

        adapted = self.adapt is not None and target is not None
        pool = target if adapted else data
        keep = np.sort(np.random.default_rng(self.seed).choice(len(pool), min(len(pool), MAX_ROWS), replace=False))
        _, feats = self._forward(pool.subset(keep), lambda f: f)
        try:
            self.reference_ = FeatureReference.from_features(
                feats, source="unlabeled target data" if adapted else "training data", seed=self.seed)
        except ValueError as e:  # non-finite features: the model still works; predict checks nothing
            self.reference_ = None
            self._log(f"no feature reference kept for predict's input check: {e}")

    def _fit_on_all(self, train: LabeledData, val: LabeledData | None, held: LabeledData, unlabeled: Any) -> None:
        """Every label counts: the measurement above came from a model trained on ``train``; the
        returned model trains again, same settings, on ``train`` + the held-out part."""
        self.heldout_proba_ = self.predict_proba(held) if self.task_.proba else None
        everything = train.concat(held)
        self.metrics_["estimate"] = (f"measured on a held-out {self.test_size:.0%} ({len(held)} examples) by a model "
                                     f"trained on the other {len(train)}; the returned model was then trained on "
                                     f"all {len(everything)} labeled examples (final_fit=all)")
        self._log(f"measured on the held-out {len(held)}; training again on all {len(everything)} labeled examples "
                  "(the returned model; final_fit=split keeps the measured one)")
        set_seed(self.seed)
        self.history_measured_ = self.history_
        self.history_ = self._train(self._build_model(everything, None, unlabeled), everything, val, unlabeled,
                                    "checkpoints-final")
        self.metrics_["n_train"] = len(everything)

    def _set_classes(self) -> None:
        classes = self.task_.classes
        self.classes_ = np.array(classes, dtype=object) if classes is not None else None

    def _spec(self, modality: str) -> str:
        """The backbone this fit uses: the user's, the encoder ``auto`` chose, or the modality's default."""
        if self.backbone != "auto":
            return self.backbone
        choice = getattr(self, "backbone_choice_", None)
        return choice.spec if choice is not None else DEFAULT_BACKBONES[modality]

    def _choose_backbone(self, train: LabeledData, val: LabeledData | None, *, carved: bool,
                         n_fit: int) -> tuple[LabeledData, LabeledData | None]:
        """``backbone='auto'`` on text classification: the installed sentence encoders and TF-IDF
        compared by cross-validated probe accuracy on the training split (``selection.encoders``);
        ``backbone_choice_`` keeps the scores. Another than the default chosen: its probe, the model
        that was measured (no fine-tuning), and a validation split carved for early stopping goes
        back into training."""
        if self.warm_start or not (self.backbone == "auto" and train.modality == "text"
                                   and self.task_.name == "classification" and self.adapt is None):
            return train, val
        from headstart.selection.encoders import choose_text_encoder

        rt = self.runtime_
        self.backbone_choice_ = choose_text_encoder(
            train, self._split(train, "train").targets, fallback=DEFAULT_BACKBONES["text"],
            cache=FeatureCache(rt.cache_dir) if rt.cache_dir is not False else None, seed=self.seed,
            device=resolve_device(rt.device), batch_size=rt.batch_size, max_length=self._prep("max_length"),
            log=self._log)
        self._log(f"backbone auto: {self.backbone_choice_.reason}")
        if self._spec("text") != DEFAULT_BACKBONES["text"] and self.strategy == "auto":
            self.strategy_, self.strategy_reason_ = self._resolve_strategy("text", n_fit)
            if carved and val is not None:
                train, val = train.concat(val), None
        return train, val

    def _few_shot_body(self, data: LabeledData, n_fit: int) -> None:
        """Defaults only (task and strategy ``auto``): a text classifier that would fine-tune the
        whole encoder on a few labels per class tunes it on pairs of them instead (the
        ``contrastive`` task, then the probe with the class-name prior; ``contrastive_default``)."""
        if (self.task != "auto" or self.strategy != "auto" or self.adapt is not None or self.warm_start
                or self.task_.name != "classification" or self._frozen_by_encoder(data.modality)):
            return
        why = contrastive_default(data.modality, n_fit, len(self.classes_))
        if why is None:
            return
        self.task_ = build_task("contrastive", **(self.task_params or {})).fit_targets(data.labels)
        self.strategy_, reason = self._resolve_strategy(data.modality, n_fit)
        self.strategy_reason_ = f"{why}; {reason}"

    def _default_pooling(self, modality: str, n_fit: int) -> str | None:
        """Defaults only (strategy ``auto``, the linear head, no ``preprocessing["pooling"]``): the text
        pooling ``few_label_text_pooling`` gives the probe on the default encoder's body (frozen, or tuned
        by the contrastive task), else None."""
        if (self.strategy != "auto" or self.head != "linear" or self.warm_start
                or "pooling" in (self.preprocessing or {})):
            return self._prep("pooling")
        probes_body = self.strategy_.frozen_backbone or self.task_.name == "contrastive"
        return few_label_text_pooling(modality, n_fit, probes_body,
                                      self._spec(modality) == DEFAULT_BACKBONES.get(modality))

    def _build_model(self, train: LabeledData, prev: Task | None, unlabeled: LabeledData | None = None
                     ) -> TransferModel:
        """The backbone (its preprocessing fitted to the training inputs, and to the unlabeled ones
        when the task trains on them: a TF-IDF student's vocabulary), the head and the task's modules."""
        spec = self._spec(train.modality)
        warm = self._warm_model(spec, prev)
        if warm is not None:
            return warm
        inputs = train
        if unlabeled is not None and self.task_.unlabeled_rows:
            inputs = LabeledData(list(train.items) + list(unlabeled.items), None, train.modality)
        backbone = prepare_backbone(spec, inputs, image_size=self._prep("image_size"),
                                    multiscale=self._prep("multiscale", True), max_length=self._prep("max_length"),
                                    max_seconds=self._prep("max_seconds"), seed=self.seed,
                                    pooling=getattr(self, "pooling_", None))
        for note in (resampling_note(train, backbone), window_note(train, backbone), series_note(train, backbone)):
            if note:
                self._log(note)
        head = build_head(self.head, backbone.num_features, self.task_.num_outputs, **(self.head_params or {}))
        return TransferModel(backbone, head, self.task_.modules(backbone.num_features))

    def _train(self, model: TransferModel, train: LabeledData, val: LabeledData | None,
               unlabeled: Any, checkpoints: str, cache: Any = None) -> list[dict[str, Any]]:
        """``cache``: where the frozen backbone's features come from (default: the runtime's disk cache)."""
        rt, ro = self.runtime_, self.run_
        self.accelerator_ = make_accelerator(rt.device, rt.mixed_precision, rt.compile,
                                             log_dir=Path(ro.out) / "logs" if ro.out else None)
        if ro.out:
            self.accelerator_.init_trackers("headstart", config={
                k: v for k, v in self.get_params().items() if isinstance(v, (int, float, str, bool))})
        model = model.to(self.accelerator_.device)
        tr, va = self._split(train, "train"), self._split(val, "val")
        self._log(f"backbone {model.backbone.spec} | task {self.task_.name} | strategy {self.strategy_.name}: "
                  f"{self.strategy_reason_}")
        balance = self._balance(tr)
        if balance == "weights":
            self.task_.set_class_weights(tr.targets)
        self.cache_ = cache if cache is not None else FeatureCache(rt.cache_dir) if rt.cache_dir is not False else None
        workers = auto_workers(train.modality, len(tr)) if rt.num_workers == "auto" else int(rt.num_workers)
        extras = {"unlabeled": self._read(unlabeled, modality=train.modality)} if unlabeled is not None else {}
        if getattr(self, "_teacher", None) is not None:
            extras["teacher"] = self._teacher
        ctx = FitContext(self.accelerator_, self.cache_, batch_size=rt.batch_size, num_workers=workers,
                         seed=self.seed, checkpoint_dir=Path(ro.out) / checkpoints if ro.out else None,
                         resume=ro.resume, verbose=self.verbose, balance=balance,
                         checkpoint_every=ro.checkpoint_every, on_step=ro.on_step, log=self._log,
                         warm_start=getattr(self, "_warm", False), extras=extras)
        if self.adapt == "adabn" and not batchnorm_layers(model.backbone):
            raise ValueError(f"adapt='adabn': {model.backbone.spec} has no BatchNorm layers to re-estimate "
                             "(transformers use LayerNorm); try adapt='coral', 'mmd', 'dann' or 'entropy'")
        history = Trainer(ctx).fit(model, self.task_, tr, va, self.strategy_)
        self.model_ = self.accelerator_.unwrap_model(model, keep_fp32_wrapper=False).eval().requires_grad_(False)
        if self.adapt == "adabn":
            self._adapt_batchnorm(extras["unlabeled"])
        return history

    def _check_shift(self, source: LabeledData, target: LabeledData) -> None:
        """Has the data shifted? A domain classifier and an MMD test on the pretrained features
        (``headstart.adaptation``), said aloud before training; ``shift_`` keeps the report and,
        with an output folder, shift.json and the plot go there."""
        import tempfile

        from headstart.adaptation.detect import detect_shift

        rt = self.runtime_
        spec = DEFAULT_BACKBONES[source.modality] if self.backbone == "auto" else self.backbone
        with tempfile.TemporaryDirectory() as scratch:
            self.shift_ = detect_shift(source, target, backbone=spec, out=self.run_.out, seed=self.seed, log=None,
                                       cache_dir=scratch if rt.cache_dir is False else rt.cache_dir, device=rt.device,
                                       image_size=self._prep("image_size"), max_length=self._prep("max_length"))
        verdict = self.shift_.verdict
        if self.adapt is not None:  # already asked for: say what is being done instead of advising it
            verdict = verdict.replace("consider --adapt", f"adapting with {self.adapt}")
        self._log(f"target data: {verdict}")

    def _adapt_batchnorm(self, target: LabeledData) -> None:
        """AdaBN: the trained model's BatchNorm statistics re-estimated on the target inputs."""
        bb = self.model_.backbone
        loader = make_loader(target, None, bb.pretrained_cfg, bb.tokenizer(), train=False,
                             batch_size=max(64, self.runtime_.batch_size))
        n = adapt_batchnorm(bb, (b["inputs"] for b in loader), next(bb.parameters()).device)
        self._log(f"AdaBN: {n} BatchNorm layers re-estimated on {len(target)} unlabeled target inputs; the model "
                  "is now for the target domain (figures measured on source data below use the target's statistics)")

    def _balance(self, tr: Split) -> str | None:
        if self.balance != "auto":
            return self.balance
        if self.task_.proba != "softmax" or tr.targets.ndim != 1:
            return None
        counts = np.bincount(tr.targets, minlength=self.task_.num_outputs)
        return "weights" if counts.min() == 0 or counts.max() / max(counts.min(), 1) > 3 else None

    def _measure(self, val_data: LabeledData | None, test_data: LabeledData | None, n_train: int) -> None:
        """The task's metrics on val/test (and to the run's trackers)."""
        self.metrics_: dict[str, Any] = {"fit_seconds": 0.0, "n_train": n_train}
        if val_data is not None:
            self.metrics_["val"] = self._score(val_data)
        if test_data is not None:
            self.metrics_["test"] = self._score(test_data)
            self._log(self.task_.format_metrics(self.metrics_["test"]))
        acc = getattr(self, "accelerator_", None)
        if acc is not None and acc.trackers and test_data is not None:
            acc.log({f"test/{k}": v for k, v in self.metrics_["test"].items() if isinstance(v, float)})

    def _write(self) -> None:
        """Logs flushed, the bundle and report written (one writer under DDP)."""
        acc = getattr(self, "accelerator_", None)
        for tracker in (acc.trackers if acc is not None else []):  # flush the event files (end_training
            tracker.finish()                                          # would tear down the DDP process group)
        out = self.run_.out
        if out and (acc is None or acc.is_main_process):
            self.save(out)
            self.write_report(out)
            self._log(f"bundle written to {out} (report: {Path(out) / 'report.html'})")
        if acc is not None:
            acc.wait_for_everyone()

    def _warm_model(self, spec: str, prev: Task | None) -> TransferModel | None:
        """With ``warm_start`` and an earlier fit on the same labels and backbone: that model, to
        train on from where it stopped (a new learning-rate schedule; scikit-learn's warm_start)."""
        prev_model = getattr(self, "model_", None)
        self._warm = False
        if not self.warm_start or prev_model is None or prev is None:
            return None
        if prev_model.backbone.spec != spec:
            raise ValueError(f"warm_start: the fitted model's backbone is {prev_model.backbone.spec!r}, not {spec!r}")
        if prev.name != self.task_.name or prev.classes != self.task_.classes:
            raise ValueError(f"warm_start: the task or its labels changed ({prev.classes} -> {self.task_.classes}); "
                             "fit afresh")
        self._log("warm start: training continues from the fitted model")
        self._warm = True
        return prev_model

    def _preflight(self, X: Any, data: LabeledData, val: Any, test: Any
                   ) -> tuple[LabeledData, LabeledData | None, LabeledData | None]:
        """Check every sample before any compute (see ``headstart.data.validate``); bad ones
        are skipped and listed, or refused with ``on_bad_sample='fail'``."""
        val_d = self._read(val, modality=data.modality) if val is not None else None
        test_d = self._read(test, modality=data.modality) if test is not None else None
        root = X if isinstance(X, (str, Path)) and Path(X).is_dir() else None
        task = getattr(self, "task_", None) or self._resolve_task(data)
        self.data_report_, data, val_d, test_d = check_data(
            data, val_d, test_d, policy=self.data_.on_bad_sample, root=root, classes=task.proba == "softmax",
            label_problem=getattr(task, "label_problem", None))
        if self.data_report_.bad or self.data_report_.warnings or self.data_report_.notes:
            self._log(self.data_report_.format())
        return data, val_d, test_d

    def _frozen_by_encoder(self, modality: str) -> str | None:
        """Why the encoder itself keeps ``auto`` on a frozen body (features without weights, or a
        larger encoder that won ``--backbone auto``'s comparison as a probe), else None."""
        spec = self._spec(modality)
        if spec.startswith(("tfidf:", "rocket:")):
            return f"{spec} features have no weights to fine-tune: a head on them"
        if getattr(self, "backbone_choice_", None) is not None and spec != DEFAULT_BACKBONES[modality]:
            return (f"{spec} won the encoder comparison with a linear probe on its frozen features: that probe "
                    "is the model returned (fine-tuning this larger encoder was not measured to pay; "
                    "--strategy fine_tuning tries it)")
        return None

    def _resolve_strategy(self, modality: str, n_train: int) -> tuple[Strategy, str]:
        params = self.strategy_params or {}
        if isinstance(self.strategy, Strategy):
            return build_strategy(self.strategy, **params), "chosen by the user"
        if self.strategy == "auto":
            chosen, why = choose(modality, n_train, len(self.classes_) if self.classes_ is not None else 0,
                                 self.task_.name,
                                 adapts="unlabeled" in self.task_.needs and not self.task_.on_cached_features,
                                 on_cached_features=self.task_.on_cached_features,
                                 tunes_body=self.task_.head_after_body() is not None)
            frozen = self._frozen_by_encoder(modality)
            if frozen:
                chosen, why = FeatureExtraction(), frozen
            unknown = set(params) - set(chosen.get_params())
            if unknown:
                raise ValueError(f"auto picked {chosen.name}, which has no parameter(s) {sorted(unknown)}; "
                                 f"its parameters: {sorted(chosen.get_params())}")
            return type(chosen)(**{**chosen.get_params(), **params}), why
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES.list())}, auto, plan")
        return build_strategy(self.strategy, **params), "chosen by the user"

    # -- predict -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Headstart is not fitted yet: call fit() or headstart.load()")

    def _logits(self, data: LabeledData) -> torch.Tensor:
        return self._forward(data)[0]

    def _forward(self, data: LabeledData, on_features: Any = None) -> tuple[torch.Tensor, Any]:
        """(logits, ``on_features`` of the pooled features or None): one pass for both."""
        self._check_fitted()
        model = self.model_
        if len(data) == 0:
            return torch.empty(0, self.task_.num_outputs), None
        device = next(model.parameters()).device
        bs = max(64, self.runtime_.batch_size)
        if getattr(self, "strategy_", None) is not None and self.strategy_.frozen_backbone and self.cache_ is not None:
            feats = self.cache_.features(model.backbone, data, batch_size=bs, device=device)
            with torch.inference_mode():
                logits = model.head(feats.to(device)).float().cpu()
            return logits, (on_features(feats.float().cpu()) if on_features is not None else None)
        nw = self.runtime_.num_workers
        workers = auto_workers(data.modality, len(data)) if nw == "auto" else int(nw)
        bb = model.backbone
        loader = make_loader(data, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=bs,
                             num_workers=workers, by_length=True)
        return predict_outputs(model, loader, device, on_features)

    def _checked_logits(self, data: LabeledData, scores: bool = False) -> tuple[torch.Tensor, np.ndarray | None]:
        """Logits, and the inputs checked against the fitted-for data's feature reference on the
        way (``reference_``; none in bundles written before it): ``input_check_`` keeps the batch
        verdict, a clear shift warns (``InputShiftWarning``); with ``scores``, per-input OOD scores."""
        from headstart.adaptation.reference import MIN_BATCH, InputShiftWarning

        ref = getattr(self, "reference_", None)
        self.input_check_ = None
        if ref is None or (len(data) < MIN_BATCH and not scores):
            return self._logits(data), None
        logits, proj = self._forward(data, ref.project)
        if proj is None:
            return logits, np.zeros(0) if scores else None
        proj = np.asarray(proj)
        self.input_check_ = ref.check(proj)
        if self.input_check_ is not None and self.input_check_.shifted:
            warnings.warn(self.input_check_.message(), InputShiftWarning, stacklevel=3)
        return logits, ref.scores(proj) if scores else None

    def outputs_and_ood_scores(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``decision_function`` and ``ood_score`` from one pass over the inputs."""
        self._check_fitted()
        if getattr(self, "reference_", None) is None:
            raise ValueError("this model has no feature reference (bundles written before it have none): fit it "
                             "again to get OOD scores")
        logits, scores = self._checked_logits(self._as_data(X), scores=True)
        return logits.numpy(), scores

    def ood_score(self, X: Any) -> np.ndarray:
        """(N,) per-input OOD scores: the distance to the nearest fitted-for example's features over
        the typical such distance among them (about 1 in distribution; 3 is far out)."""
        return self.outputs_and_ood_scores(X)[1]

    def _as_data(self, X: Any, y: Sequence[Any] | None = None) -> LabeledData:
        self._check_fitted()
        return self._read(X, y, modality=self.modality_)

    def decision_function(self, X: Any) -> np.ndarray:
        """(N, num_outputs) raw model outputs (logits; standardised values for regression)."""
        self._check_fitted()
        return self._checked_logits(self._as_data(X))[0].numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C) probabilities: softmax over classes, or one sigmoid per label (multi-label);
        columns follow ``classes_``. Regression has none."""
        self._check_fitted()
        return self.task_.predict_proba(self._checked_logits(self._as_data(X))[0])

    def predict(self, X: Any) -> np.ndarray:
        """Predictions as labels appear in the data: a class, a tuple of labels (multi-label), a
        number (regression), a tuple with one value per target (multitask)."""
        self._check_fitted()
        return self.task_.decode(self._checked_logits(self._as_data(X))[0])

    def evaluate(self, X: Any, y: Sequence[Any] | None = None) -> dict[str, Any]:
        """The task's metrics (classification: accuracy, macro-F1, per-class metrics, confusion
        matrix; regression: MAE, RMSE, R²; multi-label: micro/macro F1, mAP, subset accuracy),
        with the predictions."""
        data = self._as_data(X, y)
        classes = self.task_.proba == "softmax"
        report, data, _, _ = check_data(data, policy=self.data_.on_bad_sample, min_classes=1, classes=classes,
                                        known_labels=self.classes_.tolist() if classes else None,
                                        label_problem=getattr(self.task_, "label_problem", None))
        if report.bad:
            self._log(report.format())
        return self._score(data)

    def _score(self, data: LabeledData) -> dict[str, Any]:
        """``evaluate`` on data that already passed the pre-flight check (fit's own splits: checked
        once, not again)."""
        if data.labels is None:
            raise ValueError(f"evaluate: no labels (column {self.data_.label_column!r} missing?)")
        targets = self.task_.encode(data.labels, data.origins, "evaluate")
        logits = self._logits(data)
        m = self.task_.metrics(targets, logits)
        m["predictions"] = [list(p) if isinstance(p, tuple) else (p.item() if isinstance(p, np.generic) else p)
                            for p in self.task_.decode(logits)]
        return m

    def merge_lora(self, X: Any) -> float:
        """Fold the LoRA adapter into the backbone's weights (PEFT's merge, as ``merge_and_unload``):
        plain layers at inference, no adapter matmuls; a later ``save`` writes a full bundle.
        Parity is checked on the inputs ``X``: max |Δlogit| before vs after is printed and returned."""
        data = self._as_data(X)
        before = self._logits(data)
        n = merge_lora(self.model_.backbone)
        if not n:
            raise ValueError("merge_lora: the model has no LoRA adapter (fit with strategy='lora')")
        diff = float((self._logits(data) - before).abs().max()) if len(data) else 0.0
        print(f"merged {n} LoRA layers into the backbone: max |Δlogit| = {diff:.3g} on {len(data)} inputs", flush=True)
        return diff

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the bundle (safetensors + headstart.json + model card) into ``directory``."""
        if getattr(self, "meta_", {}).get("format") == "onnx":
            raise ValueError("this model was loaded from an ONNX folder: that folder is its saved form (copy it)")
        meta = self.bundle_meta()
        ref = getattr(self, "reference_", None)
        tensors = {ref.meta()["file"]: ref.tensors()} if ref is not None else None
        return save_bundle(directory, self.model_, meta, model_card(meta), tensors=tensors)

    def bundle_meta(self) -> dict[str, Any]:
        """What ``headstart.json`` says about this model (backbone, preprocessing, task, labels,
        strategy, metrics, lineage): the bundle's, and an exported ONNX folder's too."""
        self._check_fitted()
        bb = self.model_.backbone
        strategy = getattr(self, "strategy_", None)
        old = getattr(self, "meta_", {})
        meta = {
            "backbone": {"spec": bb.spec, "num_features": bb.num_features,
                         "pretrained_cfg": bb.pretrained_cfg.to_dict()},
            "modality": self.modality_,
            "head": {"name": getattr(self.model_.head, "name", self.head), "params": self.model_.head.params},
            "task": self.task_.state(),
            "num_outputs": self.task_.num_outputs,
            "classes": self.classes_.tolist() if self.classes_ is not None else [],
            "strategy": {"name": strategy.name, "params": strategy.get_params(), "reason": self.strategy_reason_}
            if strategy is not None else old.get("strategy"),
            "metrics": dict(self.metrics_),
            "history": getattr(self, "history_", []),
            "data": (self.data_report_.to_dict() if getattr(self, "data_report_", None) is not None else old.get("data")),
            "plan": (self.plan_.to_dict() if getattr(self, "plan_", None) is not None else old.get("plan")),
            "params": self._saved_params(),
        }
        lineage = getattr(self, "lineage_", None) or old.get("lineage")
        if lineage:  # how a compressed model was made from another (distillation: the teacher, T, alpha)
            meta["lineage"] = lineage
        if "compression" in old:  # a compressed bundle: its lineage and pruned architecture travel on
            meta["compression"] = old["compression"]
        ref = getattr(self, "reference_", None)
        if ref is not None:
            meta["reference"] = ref.meta()
        return meta

    def _saved_params(self) -> dict[str, Any]:
        """The constructor parameters as JSON (config objects as dicts; instances by their params)."""
        out: dict[str, Any] = {}
        for k, v in self.get_params(deep=False).items():
            if k in CONFIGS:
                out[k] = CONFIGS[k].coerce(v).to_dict()
            elif hasattr(v, "get_params"):
                out[k], out[f"{k}_params"] = v.name, v.get_params() if k != "task" else None
            elif k not in out:
                out[k] = str(v) if isinstance(v, Path) else v
        return out

    def write_report(self, directory: str | Path) -> Path:
        """``report.html`` (self-contained: metrics, training curves, the task's plots, the most
        confidently wrong examples, the data check) and ``metrics.json`` into ``directory``."""
        from headstart.evaluation.report import write_fit_report

        self._check_fitted()
        return write_fit_report(self, directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "Headstart":
        model, meta = load_model(directory)  # a bundle, or an ONNX folder (export / compress int8)
        names = set(inspect.signature(cls.__init__).parameters)
        params = {k: v for k, v in meta.get("params", {}).items() if k in names and k != "run"}
        if isinstance(params.get("task"), str) and "," in params["task"]:
            params["task"] = "auto"  # the fitted task below is what predicts
        params["verbose"] = False
        est = cls(**params)
        est.model_ = model.to(resolve_device(device))
        est.task_ = task_from_state(meta["task"]) if "task" in meta else build_task("classification").load_state(
            {"classes": meta["classes"]})
        est._set_classes()
        est.modality_ = meta["modality"]
        est.strategy_ = None
        est.cache_ = None
        est.metrics_ = meta.get("metrics", {})
        est.history_ = meta.get("history", [])
        est.meta_ = meta
        est.reference_ = None
        if "reference" in meta:  # bundles written before it have none: predict then checks nothing
            from headstart.adaptation.reference import FeatureReference

            ref = meta["reference"]
            est.reference_ = FeatureReference.from_tensors(load_tensors(directory, meta, ref["file"]), ref)
        return est


def fit(data: Any, y: Sequence[Any] | None = None, *, val: Any = None, test: Any = None, **params: Any) -> Headstart:
    """``headstart.fit("folder/")`` — build a Headstart with ``params`` and fit it."""
    return Headstart(**params).fit(data, y, val=val, test=test)


def load(directory: str | Path, device: str | None = None) -> Headstart:
    """Load a bundle written by ``fit``/``save``, or an ONNX folder written by ``export`` /
    ``compress`` (run with onnxruntime, same preprocessing and outputs)."""
    return Headstart.load(directory, device=device)
