"""The estimator users hold (scikit-learn contract): the constructor stores parameters, ``fit``
learns, fitted state ends in ``_``; ``predict`` / ``predict_proba`` / ``evaluate`` / ``save``;
``load`` reads a bundle back into the same kind of object."""
from __future__ import annotations

import importlib.util
import inspect
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from headstart.backbones.prepare import prepare_backbone, resolve_device
from headstart.data._base import LabeledData
from headstart.data.feature_cache import FeatureCache
from headstart.data.loaders import make_loader
from headstart.data.sources import from_sequences, read_data
from headstart.data.splits import stratified_split
from headstart.data.validate import check_data
from headstart.evaluation.metrics import classification_metrics, format_metrics
from headstart.export.bundle import load_bundle, save_bundle
from headstart.export.card import model_card
from headstart.heads import build_head
from headstart.model import TransferModel
from headstart.strategies import STRATEGIES, FitContext, Split, Strategy, build_strategy, choose
from headstart.training.loop import predict_logits

DEFAULT_BACKBONES = {"image": "efficientnet_lite0", "text": "minilm"}


def _is_existing_path(source: str | Path) -> bool:
    try:
        return Path(source).exists()
    except OSError:  # e.g. a long text is not a file name
        return False


def make_accelerator(device: str | None = None, mixed_precision: str = "auto",
                     compile: bool = False, log_dir: str | Path | None = None) -> Accelerator:
    """CPU unless a GPU is present (or ``device`` says otherwise); bf16 autocast on GPUs that
    support it, fp16 on older ones, none on CPU. ``compile``: torch.compile (inductor) through
    Accelerate, opt-in (minutes of compilation pay off only on long runs). ``log_dir``: run logs
    as TensorBoard event files there, and to MLflow too when it is installed."""
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
    (one core left to it), texts are tokenized once up front and need none."""
    if modality != "image" or n < 256:
        return 0
    return int(min(8, max(0, (os.cpu_count() or 1) - 1)))


class Headstart:
    """Adapt a pretrained backbone to labeled data.

    >>> clf = Headstart(backbone="efficientnet_lite0").fit("photos/")   # doctest: +SKIP
    >>> clf.predict(["new.jpg"])                                        # doctest: +SKIP
    """

    def __init__(self, backbone: str = "auto", strategy: str = "auto", head: str = "linear",
                 head_params: dict[str, Any] | None = None, strategy_params: dict[str, Any] | None = None,
                 image_size: int | None = None, max_length: int | None = None, multiscale: bool = True,
                 batch_size: int = 32,
                 val_size: float | str = "auto", test_size: float = 0.2, balance: str | None = "auto",
                 seed: int = 0, cache_dir: str | Path | None = None, out: str | Path | None = None,
                 resume: bool = False, device: str | None = None, mixed_precision: str = "auto",
                 num_workers: int | str = 0, text_column: str = "text", path_column: str = "path",
                 label_column: str = "label", checkpoint_every: int | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None, on_bad_sample: str = "skip",
                 compile: bool = False, budget: str | float | None = None, warm_start: bool = False,
                 verbose: bool = True) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.head = head
        self.head_params = head_params
        self.strategy_params = strategy_params
        self.image_size = image_size
        self.max_length = max_length
        self.multiscale = multiscale
        self.batch_size = batch_size
        self.val_size = val_size
        self.test_size = test_size
        self.balance = balance
        self.seed = seed
        self.cache_dir = cache_dir
        self.out = out
        self.resume = resume
        self.checkpoint_every = checkpoint_every
        self.on_step = on_step
        self.on_bad_sample = on_bad_sample
        self.compile = compile
        self.budget = budget
        self.warm_start = warm_start
        self.device = device
        self.mixed_precision = mixed_precision
        self.num_workers = num_workers
        self.text_column = text_column
        self.path_column = path_column
        self.label_column = label_column
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def set_params(self, **params: Any) -> "Headstart":
        """scikit-learn's setter: change constructor parameters (e.g. ``warm_start``) and return self."""
        known = self.get_params()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; known: {', '.join(known)}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

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
                return read_data(source, text_column=self.text_column, path_column=self.path_column,
                                 label_column=self.label_column)
            if isinstance(source, Path) or modality == "image" or modality is None:
                raise FileNotFoundError(f"{source}: no such file or folder")
            return from_sequences([source], None, modality)  # one text
        if isinstance(source, tuple) and len(source) == 2 and labels is None:  # (X, y) for val/test
            return from_sequences(source[0], source[1], modality)
        return from_sequences(source, labels, modality)

    def _encode(self, data: LabeledData, what: str) -> np.ndarray:
        if data.labels is None:
            raise ValueError(f"{what}: no labels (column {self.label_column!r} missing?)")
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        out = np.empty(len(data), dtype=np.int64)
        for i, (lab, origin) in enumerate(zip(data.labels, data.origins)):
            if lab not in index:
                raise ValueError(f"{what}: {origin}: label {lab!r} was not seen in training "
                                 f"(known: {', '.join(map(str, self.classes_[:20]))})")
            out[i] = index[lab]
        return out

    def _splits(self, data: LabeledData, val: Any, test: Any,
                early_stopping: bool) -> tuple[LabeledData, LabeledData | None, LabeledData | None]:
        """Explicit val/test, else seeded stratified splits. A validation split is held out only
        for early stopping, and only from 1000 examples up (below that every example counts more
        as training data, and strategies run a fixed, measured budget)."""
        mod = data.modality
        test_data = self._read(test, modality=mod) if test is not None else None
        val_data = self._read(val, modality=mod) if val is not None else None
        train = data
        if test_data is None and self.test_size:
            keep, held = stratified_split(train.labels, self.test_size, self.seed)
            train, test_data = train.subset(keep), train.subset(held)
            self._log(f"no test set given: held out a stratified {self.test_size:.0%} ({len(test_data)} items)")
        if val_data is None:
            frac = self.val_size
            if frac == "auto":
                frac = 0.1 if early_stopping and len(train) >= 1000 else 0.0
            if frac:
                keep, held = stratified_split(train.labels, float(frac), self.seed + 1)
                train, val_data = train.subset(keep), train.subset(held)
        return train, val_data, test_data

    # -- fit ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Sequence[Any] | None = None, *, val: Any = None, test: Any = None) -> "Headstart":
        """Learn from X (a folder, CSV/JSONL file, or a sequence of images/texts with labels y).
        ``val``/``test`` are optional explicit splits in the same forms.

        ``strategy='plan'``, or ``'auto'`` with a ``budget``, runs the transfer planner
        (``headstart.selection.planner``): the ladder of strategies, measured on a validation
        split, and keeps the best rung (``plan_`` holds the evidence)."""
        t0 = time.perf_counter()
        if self.strategy == "plan" or (self.strategy == "auto" and self.budget is not None):
            return self._fit_planned(X, y, val, test, t0)
        data = self._read(X, y)
        if len(data) == 0:
            raise ValueError("the dataset is empty")
        if data.labels is None:
            raise ValueError(f"no labels found (expected a {self.label_column!r} column, class folders, or y)")
        data, val, test = self._preflight(X, data, val, test)
        prev_classes = getattr(self, "classes_", None)
        self.classes_ = np.array(sorted(set(data.labels), key=lambda v: (str(type(v)), v)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError(f"only one class ({self.classes_[0]!r}) in the training data: "
                             "classification needs at least two")
        self.modality_ = data.modality
        n_test = len(data) * self.test_size if test is None else 0
        self.strategy_, self.strategy_reason_ = self._resolve_strategy(data.modality, int(len(data) - n_test),
                                                                       len(self.classes_))
        train, val_data, test_data = self._splits(data, val, test, not self.strategy_.frozen_backbone)
        set_seed(self.seed)
        spec = DEFAULT_BACKBONES[data.modality] if self.backbone == "auto" else self.backbone
        warm = self._warm_model(spec, prev_classes)
        if warm is not None:
            model = warm
        else:
            backbone = prepare_backbone(spec, train, image_size=self.image_size, multiscale=self.multiscale,
                                        max_length=self.max_length, seed=self.seed)
            head = build_head(self.head, backbone.num_features, len(self.classes_), **(self.head_params or {}))
            model = TransferModel(backbone, head)
        self.accelerator_ = make_accelerator(self.device, self.mixed_precision, self.compile,
                                             log_dir=Path(self.out) / "logs" if self.out else None)
        if self.out:
            self.accelerator_.init_trackers("headstart", config={
                k: v for k, v in self.get_params().items() if isinstance(v, (int, float, str, bool))})
        model = model.to(self.accelerator_.device)

        tr = Split(train, self._encode(train, "train"))
        va = Split(val_data, self._encode(val_data, "val")) if val_data is not None else None
        self._log(f"backbone {spec} | strategy {self.strategy_.name}: {self.strategy_reason_}")
        counts = np.bincount(tr.targets, minlength=len(self.classes_))
        balance = self.balance
        if balance == "auto":
            balance = "weights" if counts.min() == 0 or counts.max() / max(counts.min(), 1) > 3 else None
        self.cache_ = FeatureCache(self.cache_dir) if self.cache_dir is not False else None
        ckpt = Path(self.out) / "checkpoints" if self.out else None
        workers = auto_workers(data.modality, len(tr)) if self.num_workers == "auto" else int(self.num_workers)
        ctx = FitContext(self.accelerator_, self.cache_, batch_size=self.batch_size, num_workers=workers,
                         seed=self.seed, checkpoint_dir=ckpt, resume=self.resume, verbose=self.verbose,
                         balance=balance, checkpoint_every=self.checkpoint_every, on_step=self.on_step,
                         log=self._log, warm_start=warm is not None)
        self.history_ = self.strategy_.fit(model, tr, va, ctx)
        self.model_ = self.accelerator_.unwrap_model(model, keep_fp32_wrapper=False).eval().requires_grad_(False)
        self.fit_seconds_ = time.perf_counter() - t0
        self.splits_ = {"train": train, "val": val_data, "test": test_data}
        self.metrics_: dict[str, Any] = {"fit_seconds": self.fit_seconds_, "n_train": len(train)}
        if va is not None:
            self.metrics_["val"] = self.evaluate(val_data)
        if test_data is not None:
            self.metrics_["test"] = self.evaluate(test_data)
            self._log(format_metrics(self.metrics_["test"], self.classes_))
        if self.accelerator_.trackers and test_data is not None:
            self.accelerator_.log({"test/accuracy": self.metrics_["test"]["accuracy"],
                                   "test/macro_f1": self.metrics_["test"]["macro_f1"]})
        for tracker in self.accelerator_.trackers:  # flush the event files (end_training would also
            tracker.finish()                          # tear down the process group under DDP)
        if self.out and self.accelerator_.is_main_process:  # one writer under DDP
            self.save(self.out)
            self.write_report(self.out)
            self._log(f"bundle written to {self.out} (report: {Path(self.out) / 'report.html'})")
        self.accelerator_.wait_for_everyone()
        return self

    def _warm_model(self, spec: str, classes: np.ndarray | None) -> TransferModel | None:
        """With ``warm_start`` and an earlier fit on the same classes and backbone: that model, to
        train on from where it stopped (a new learning-rate schedule; scikit-learn's warm_start)."""
        prev = getattr(self, "model_", None)
        if not self.warm_start or prev is None:
            return None
        if prev.backbone.spec != spec:
            raise ValueError(f"warm_start: the fitted model's backbone is {prev.backbone.spec!r}, not {spec!r}")
        before = [] if classes is None else list(classes)
        if before != list(self.classes_):
            raise ValueError(f"warm_start: the classes changed ({before} -> {list(self.classes_)}); fit afresh")
        self._log("warm start: training continues from the fitted model")
        prev.head.requires_grad_(True)  # a fitted model is frozen; strategies set the backbone's groups
        return prev

    def _fit_planned(self, X: Any, y: Sequence[Any] | None, val: Any, test: Any, t0: float) -> "Headstart":
        from headstart.selection.planner import Planner, parse_budget

        data = self._read(X, y)
        if len(data) == 0 or data.labels is None:
            raise ValueError("the planner needs a non-empty labeled dataset")
        data, val_d, test_d = self._preflight(X, data, val, test)
        if val_d is not None:  # the planner holds out its own validation split
            data = LabeledData(list(data.items) + list(val_d.items), list(data.labels) + list(val_d.labels),
                               data.modality, list(data.origins) + list(val_d.origins))
        train, _, test_d = self._splits(data, None, test_d, early_stopping=False)
        base = {k: v for k, v in self.get_params().items()
                if k not in ("strategy", "strategy_params", "head", "head_params", "budget", "on_step")}
        if base["backbone"] == "auto":
            base["backbone"] = DEFAULT_BACKBONES[data.modality]
        base["on_bad_sample"] = "skip"  # already checked above
        planner = Planner(base, budget=parse_budget(self.budget), log=self._log, **(self.strategy_params or {}))
        self._log(f"planning on {len(train)} examples (budget {self.budget or 'none'}):")
        self.plan_, winner = planner.run(train)
        self._log(self.plan_.format())
        for k, v in vars(winner).items():  # adopt the winner's fitted state
            if k.endswith("_") and not k.startswith("_") and k not in ("data_report_",):
                setattr(self, k, v)
        self.strategy_reason_ = f"planner pick: {self.plan_.pick} ({'; '.join(self.plan_.decisions[-2:])})"
        self.fit_seconds_ = time.perf_counter() - t0
        self.splits_ = {"train": train, "val": None, "test": test_d}
        self.metrics_ = {"fit_seconds": self.fit_seconds_, "n_train": len(train)}
        if test_d is not None:
            self.metrics_["test"] = self.evaluate(test_d)
            self._log(format_metrics(self.metrics_["test"], self.classes_))
        if self.out:
            self.save(self.out)
            self.write_report(self.out)
            self._log(f"bundle written to {self.out} (report: {Path(self.out) / 'report.html'})")
        return self

    def _preflight(self, X: Any, data: LabeledData, val: Any, test: Any
                   ) -> tuple[LabeledData, LabeledData | None, LabeledData | None]:
        """Check every sample before any compute (see ``headstart.data.validate``); bad ones
        are skipped and listed, or refused with ``on_bad_sample='fail'``."""
        val_d = self._read(val, modality=data.modality) if val is not None else None
        test_d = self._read(test, modality=data.modality) if test is not None else None
        root = X if isinstance(X, (str, Path)) and Path(X).is_dir() else None
        self.data_report_, data, val_d, test_d = check_data(data, val_d, test_d, policy=self.on_bad_sample,
                                                            root=root)
        if self.data_report_.bad or self.data_report_.warnings:
            self._log(self.data_report_.format())
        return data, val_d, test_d

    def _resolve_strategy(self, modality: str, n_train: int, n_classes: int) -> tuple[Strategy, str]:
        params = self.strategy_params or {}
        if self.strategy == "auto":
            chosen, why = choose(modality, n_train, n_classes)
            unknown = set(params) - set(chosen.get_params())
            if unknown:
                raise ValueError(f"auto picked {chosen.name}, which has no parameter(s) {sorted(unknown)}; "
                                 f"its parameters: {sorted(chosen.get_params())}")
            return type(chosen)(**{**chosen.get_params(), **params}), why
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES.list())}, plan")
        return build_strategy(self.strategy, **params), "chosen by the user"

    # -- predict -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Headstart is not fitted yet: call fit() or headstart.load()")

    def _logits(self, data: LabeledData) -> torch.Tensor:
        self._check_fitted()
        model = self.model_
        if len(data) == 0:
            return torch.empty(0, len(self.classes_))
        device = next(model.parameters()).device
        if getattr(self, "strategy_", None) is not None and self.strategy_.frozen_backbone and self.cache_ is not None:
            feats = self.cache_.features(model.backbone, data, batch_size=max(64, self.batch_size), device=device)
            with torch.inference_mode():
                return model.head(feats.to(device)).float().cpu()
        workers = auto_workers(data.modality, len(data)) if self.num_workers == "auto" else int(self.num_workers)
        loader = make_loader(data, None, model.backbone, train=False, batch_size=max(64, self.batch_size),
                             num_workers=workers)
        return predict_logits(model, loader, device)

    def _as_data(self, X: Any, y: Sequence[Any] | None = None) -> LabeledData:
        self._check_fitted()
        return self._read(X, y, modality=self.modality_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C) class probabilities; columns follow ``classes_``."""
        return torch.softmax(self._logits(self._as_data(X)), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Labels as they appear in the training data."""
        pred = self._logits(self._as_data(X)).argmax(1).numpy()
        return self.classes_[pred]

    def evaluate(self, X: Any, y: Sequence[Any] | None = None) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class metrics, confusion matrix, and the predictions."""
        data = self._as_data(X, y)
        report, data, _, _ = check_data(data, policy=self.on_bad_sample, known_labels=self.classes_.tolist(),
                                        min_classes=1)
        if report.bad:
            self._log(report.format())
        targets = self._encode(data, "evaluate")
        pred = self._logits(data).argmax(1).numpy()
        m = classification_metrics(targets, pred, self.classes_.tolist())
        m["predictions"] = self.classes_[pred].tolist()
        return m

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        bb = self.model_.backbone
        meta = {
            "backbone": {"spec": bb.spec, "num_features": bb.num_features,
                         "pretrained_cfg": bb.pretrained_cfg.to_dict()},
            "modality": self.modality_,
            "head": {"name": getattr(self.model_.head, "name", self.head), "params": self.model_.head.params},
            "classes": self.classes_.tolist(),
            "strategy": {"name": self.strategy_.name, "params": self.strategy_.get_params(),
                         "reason": self.strategy_reason_} if getattr(self, "strategy_", None) else self.meta_.get("strategy"),
            "metrics": {k: v for k, v in self.metrics_.items()},
            "history": getattr(self, "history_", []),
            "data": (self.data_report_.to_dict() if getattr(self, "data_report_", None) is not None
                     else getattr(self, "meta_", {}).get("data")),
            "plan": (self.plan_.to_dict() if getattr(self, "plan_", None) is not None
                     else getattr(self, "meta_", {}).get("plan")),
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()
                       if not callable(v)},
        }
        return save_bundle(directory, self.model_, meta, model_card(meta))

    def write_report(self, directory: str | Path) -> Path:
        """``report.html`` (self-contained: metrics, training curves, confusion matrix, the most
        confidently wrong examples, the data check) and ``metrics.json`` into ``directory``."""
        from headstart.evaluation.report import write_fit_report

        self._check_fitted()
        return write_fit_report(self, directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "Headstart":
        model, meta = load_bundle(directory)
        params = {k: v for k, v in meta.get("params", {}).items() if k in inspect.signature(cls.__init__).parameters}
        params.update(verbose=False, out=None, resume=False)
        est = cls(**params)
        est.model_ = model.to(resolve_device(device))
        est.classes_ = np.array(meta["classes"], dtype=object)
        est.modality_ = meta["modality"]
        est.strategy_ = None
        est.cache_ = None
        est.metrics_ = meta.get("metrics", {})
        est.history_ = meta.get("history", [])
        est.meta_ = meta
        return est


def fit(data: Any, y: Sequence[Any] | None = None, *, val: Any = None, test: Any = None, **params: Any) -> Headstart:
    """``headstart.fit("folder/")`` — build a Headstart with ``params`` and fit it."""
    return Headstart(**params).fit(data, y, val=val, test=test)


def load(directory: str | Path, device: str | None = None) -> Headstart:
    """Load a bundle written by ``fit``/``save``."""
    return Headstart.load(directory, device=device)
