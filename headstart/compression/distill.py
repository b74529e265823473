"""Distillation of a fitted bundle into a smaller student (Hinton et al. 2015; the loss is
``headstart.tasks.distillation``): ``distill(teacher_bundle, student, data, unlabeled, out)``.

The teacher bundle is loaded once; its logits on the training inputs and on the extra unlabeled
inputs (the transfer set) are computed once (``TeacherLogits``) and the student trains through
the one trainer on the teacher's softened outputs plus the true labels. The student bundle is a
normal bundle (safetensors + JSON) whose ``headstart.json`` and model card carry the lineage: the
teacher (folder name, weights SHA-256, backbone, accuracy), the temperature, alpha and the steps.

Students: any backbone spec. What trains depends on it (``student_recipe``): a randomly
initialised one (``tiny:small_cnn``, ``scratch:...``) trains whole from scratch with the
distillation loss; ``tfidf:...`` (the fast CPU text student: its vocabulary learned on the labeled
and unlabeled texts) gets a logistic-regression probe on the true labels and, for the unlabeled
inputs, the teacher's argmax (the task's closed form; ``strategy_params={"solver": "adamw"}``
trains the head with the soft loss instead); a pretrained catalog backbone (``minilm`` for an
``mpnet`` teacher) follows ``auto`` (the same probe on its cached features, or a fine-tune), or
the strategy given: ``fine_tuning`` on text tunes the whole encoder and its head end to end on the
softened outputs over the transfer set (``recipes.TEXT_DISTILL_TUNING``: lr 1e-4, batch 32, 2 epochs).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from headstart._files import default_cache_dir
from headstart.api import Headstart
from headstart.config import RunOptions, Runtime
from headstart.data._base import LabeledData
from headstart.recipes import SCRATCH_PARAMS, TEXT_DISTILL_TUNING
from headstart.tasks.distillation import DistillationTask, TeacherLogits


def load_teacher(bundle: str | Path, device: str | None = None) -> Headstart:
    """The teacher estimator from its bundle; a missing, corrupt or non-classifier bundle is
    refused with the reason."""
    path = Path(bundle)
    try:
        teacher = Headstart.load(path, device=device)
    except (FileNotFoundError, ValueError, KeyError, OSError, RuntimeError) as e:
        raise ValueError(f"teacher bundle {path}: cannot be loaded: {e}") from None
    if teacher.task_.proba != "softmax" or teacher.classes_ is None:
        raise ValueError(f"teacher bundle {path}: its task is {teacher.task_.name}; distillation needs a "
                         "classifier (softmax outputs over classes)")
    return teacher


def teacher_logits(teacher: Headstart, name: str, cache_dir: Any = None) -> TeacherLogits:
    """The teacher's logits per input, computed once per distinct input and kept in
    ``cache_dir/teacher-logits/<weights SHA-256>.safetensors`` (``cache_dir`` False: in memory only)."""
    def predict(data: LabeledData) -> np.ndarray:
        return teacher.decision_function(data)
    sha = teacher.meta_.get("files", {}).get("model.safetensors")
    store = None
    if cache_dir is not False and sha:
        store = (Path(cache_dir) if cache_dir else default_cache_dir()) / "teacher-logits" / f"{sha}.safetensors"
    return TeacherLogits(predict, teacher.classes_.tolist(), name=f"teacher {name}", store=store)


def student_recipe(spec: str, modality: str | None = None, strategy: str | None = None) -> dict[str, Any]:
    """Estimator parameters for a student backbone (see the module docstring); ``strategy``: the
    user's, which keeps the recipe's parameters only where it is the recipe's own strategy, or a
    pretrained text student fine-tuned whole (``TEXT_DISTILL_TUNING``)."""
    if spec.startswith(("tiny:", "scratch:")):
        # no augmentation: the teacher's outputs are computed once on the plain inputs, so an
        # augmented view would be trained towards the outputs of another image. Fashion-MNIST, 500
        # labels + 20k unlabeled, tiny:small_cnn, 2000 pool images outside both: 85.90% without,
        # 84.30% with the scratch recipe's crop + flip (teacher 84.50%)
        recipe = {"strategy": "fine_tuning", "strategy_params": {**SCRATCH_PARAMS, "augment": False}}
    elif spec.startswith("tfidf:"):
        recipe = {"strategy": "feature_extraction"}
    elif strategy == "fine_tuning" and modality == "text":
        recipe = {"strategy": "fine_tuning", "strategy_params": dict(TEXT_DISTILL_TUNING)}
    else:
        recipe = {"strategy": "auto"}
    return recipe if strategy in (None, recipe["strategy"]) else {"strategy": strategy}


def distill(teacher_bundle: str | Path, student: str, data: Any, unlabeled: Any = None,
            out: str | Path = "headstart-distilled", *, test: Any = None, temperature: float = 2.0,
            alpha: float = 0.5, device: str | None = None, data_spec: Any = None, **params: Any) -> Path:
    """Train ``student`` (a backbone spec) on ``data`` (labeled: a folder, CSV/JSONL, or
    LabeledData) and ``unlabeled`` extra inputs with the teacher bundle's softened outputs;
    write the student bundle (and its report) to ``out`` and return it. ``test``: labeled data
    both are measured on. ``data_spec``: how to read the files (Headstart's ``data``: columns);
    ``params``: other Headstart parameters (``strategy``, ``strategy_params``, ``seed``, ``runtime``, ...)."""
    est = fit_student(teacher_bundle, student, data, unlabeled, test=test, temperature=temperature, alpha=alpha,
                      device=device, data_spec=data_spec, **params)
    saved = est.save(out)
    est.write_report(out)
    return saved


def fit_student(teacher_bundle: str | Path, student: str, data: Any, unlabeled: Any = None, *, test: Any = None,
                temperature: float = 2.0, alpha: float = 0.5, device: str | None = None, data_spec: Any = None,
                **params: Any) -> Headstart:
    """``distill`` without writing: the fitted student estimator, its lineage in ``lineage_``."""
    t0 = time.perf_counter()
    path = Path(teacher_bundle)
    teacher = load_teacher(path, device)
    runtime = Runtime.coerce(params.pop("runtime", None))
    runtime = runtime.replace(device=device) if device else runtime
    cached = teacher_logits(teacher, path.name, runtime.cache_dir)
    task = DistillationTask(temperature=temperature, alpha=alpha, teacher_classes=teacher.classes_.tolist())
    kw = student_recipe(student, teacher.modality_, params.get("strategy"))
    given = params.get("strategy_params") or {}
    kw = {**kw, **params, "strategy_params": {**(kw.get("strategy_params") or {}), **given} or None}
    kw["runtime"] = runtime
    kw["run"] = RunOptions.coerce(kw.get("run")).replace(check_shift=False, out=None)
    est = Headstart(backbone=student, task=task, data=data_spec, **kw)
    labeled = est._read(data)
    if labeled.modality != teacher.modality_:
        raise ValueError(f"teacher {path.name} is a {teacher.modality_} model but the data are {labeled.modality}")
    est.fit(labeled, test=test, unlabeled=unlabeled, teacher=cached)
    step = {"step": "distillation", "teacher": path.resolve().name,
            "teacher_sha256": teacher.meta_.get("files", {}).get("model.safetensors"),
            "teacher_backbone": teacher.model_.backbone.spec, "temperature": temperature, "alpha": alpha,
            "student": student, "strategy": est.strategy_.name, "epochs": len(est.history_),
            "teacher_inputs": cached.computed, "teacher_runs": cached.calls}
    test_split = est.splits_.get("test")
    if test_split is not None and test_split.labels is not None:
        pred = teacher.classes_[cached(test_split).argmax(1).numpy()]
        step["teacher_test_accuracy"] = float(np.mean(pred == np.asarray(test_split.labels, dtype=object)))
    est.lineage_ = list(teacher.meta_.get("lineage") or []) + [step]
    est.metrics_["fit_seconds"] = time.perf_counter() - t0
    return est
