"""Every registered task meets the Task contract: encode/decode round trip, a finite loss with
gradients, metrics with a score, and a state that rebuilds the same task."""
import numpy as np
import pytest
import torch

from headstart.data._base import LabeledData
from headstart.model import ModelOutput
from headstart.tasks import TASKS, build_task, task_from_state
from headstart.tasks.adaptation import DomainOutput
from headstart.tasks.distillation import TeacherLogits

LABELS = {
    "classification": ["cat", "dog", "cat", "bird", "dog", "cat"],
    "multilabel": ["cat|outdoor", "dog", "cat", "bird|outdoor", "dog|indoor", "cat|indoor"],
    "regression": ["1.5", "2", "3.25", "10", "-4", "0"],
    "multitask": [("cat", "1.5"), ("dog", "2"), ("cat", "3"), ("bird", "10"), ("dog", "-4"), ("cat", "0")],
    "distillation": ["cat", "dog", "cat", "bird", "dog", "cat"],
    **{name: ["cat", "dog", "cat", "bird", "dog", "cat"] for name in ("dann", "cdan", "coral", "mmd", "entropy",
                                                                         "feature_align", "contrastive")},
}

def _task(name):
    if name == "multitask":
        return build_task("classification,regression", names=["kind", "size"])
    return build_task(name)


def test_every_registered_task_has_a_conformance_row():
    ours = {n for n in TASKS.list() if TASKS.get(n).__module__.startswith("headstart.")}  # tests add their own
    assert ours == set(LABELS)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_task_contract(name):
    labels = LABELS[name]
    task = _task(name).fit_targets(labels)
    origins = [f"row {i}" for i in range(len(labels))]
    targets = task.encode(labels, origins, "train")
    assert len(targets) == len(labels)
    logits = torch.randn(len(labels), task.num_outputs, requires_grad=True)
    batch = {"targets": torch.as_tensor(targets)}
    if "teacher" in task.needs:  # the teacher's outputs join the targets the loss reads
        teacher = TeacherLogits(lambda d: np.random.default_rng(0).normal(size=(len(d), task.num_outputs)),
                                task.classes)
        _, rows = task.training_rows(LabeledData(labels, labels, "text"), targets, {"teacher": teacher})
        batch = {"targets": torch.as_tensor(rows)}
    task.modules(4)
    feats = torch.randn(len(labels), 4, requires_grad=True)
    output = ModelOutput(feats, logits)
    if "unlabeled" in task.needs:  # a second stream: the target batch's features and logits
        output = DomainOutput(output.features, logits, torch.randn(5, 4) + 1, torch.randn(5, task.num_outputs))
    out = task.loss(output, batch, 0.5)
    out["loss"].backward()
    # the loss reaches the logits, or the features where it tunes the body and fits the head after
    reached = feats if task.head_after_body() is not None else logits
    assert torch.isfinite(out["loss"]) and reached.grad is not None and reached.grad.abs().sum() > 0
    m = task.metrics(targets, logits.detach())
    assert np.isfinite(m["score"]) and m["n"] == len(labels)
    assert isinstance(task.format_metrics(m), str)
    again = task_from_state(task.state())
    assert again.num_outputs == task.num_outputs
    assert list(again.decode(logits.detach())) == list(task.decode(logits.detach()))


@pytest.mark.parametrize("name", ["classification", "multilabel"])
def test_unknown_label_is_refused_with_its_row(name):
    task = _task(name).fit_targets(LABELS[name])
    with pytest.raises(ValueError, match="row 7: label 'fish' was not seen in training"):
        task.encode(["fish"], ["row 7"], "test")


def test_regression_refuses_a_non_number_naming_the_row():
    task = _task("regression").fit_targets(LABELS["regression"])
    with pytest.raises(ValueError, match="data.csv:4: target 'n/a' is not a number"):
        task.encode(["n/a"], ["data.csv:4"], "train")


def test_regression_decodes_to_the_original_units():
    task = _task("regression").fit_targets(["10", "20", "30"])
    t = task.encode(["25"], ["r"])
    assert task.decode(torch.as_tensor(t)).tolist() == pytest.approx([25.0])


def test_multilabel_thresholds_are_tuned_on_validation_outputs():
    task = _task("multilabel").fit_targets(["a", "b", "a|b"])
    targets = task.encode(["a", "a", "b", "a|b"], ["r"] * 4)
    logits = torch.tensor([[-0.2, -3.0], [-0.1, -2.0], [-3.0, 2.0], [-0.3, 2.0]])  # "a" scores low but ranks first
    before = task.metrics(targets, logits)["micro_f1"]
    task.after_fit(targets, logits)
    assert task.metrics(targets, logits)["micro_f1"] > before and task.thresholds_[0] < 0.5


def test_multilabel_closed_form_head_tunes_thresholds_without_a_validation_split():
    """Small sets have no validation split: thresholds come from the probe's out-of-fold outputs."""
    from headstart.heads import build_head

    rng = np.random.RandomState(0)
    y = (rng.rand(80, 2) < [0.5, 0.15]).astype(np.float32)  # a common and a rare label
    x = torch.tensor(rng.randn(80, 20) + 0.8 * y @ rng.randn(2, 20), dtype=torch.float32)
    tuned, fixed = build_task("multilabel").fit_targets(["a|b"]), build_task("multilabel", tune_thresholds=False)
    fixed.fit_targets(["a|b"])
    for task in (tuned, fixed):
        task.shortcut(build_head("linear", 20, 2), x, y, block_dims=None, standardize=True, balanced=False, seed=0)
    assert fixed.thresholds_.tolist() == [0.5, 0.5] and tuned.thresholds_.tolist() != [0.5, 0.5]
