"""The distillation task: Hinton et al.'s loss as a hand computation, unlabeled rows with the soft
term only, the teacher run once per input (through the one trainer, over several epochs and the
final fit on all labels), and the teacher's columns put in the student's class order."""
import numpy as np
import pytest
import torch

from headstart.api import Headstart
from headstart.data._base import LabeledData
from headstart.data.modalities import digests
from headstart.data.sources import read_data
from headstart.model import ModelOutput
from headstart.tasks.distillation import DistillationTask, TeacherLogits, distillation_loss


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_loss_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    z, v = rng.normal(size=(5, 3)) * 2, rng.normal(size=(5, 3)) * 2  # student, teacher logits
    y = np.array([0, 2, -1, 1, -1])
    T, alpha = 3.0, 0.3
    p, q = _softmax(z / T), _softmax(v / T)
    kl = (q * np.log(q / p)).sum(1)
    ce = np.array([-np.log(_softmax(z)[i, y[i]]) if y[i] >= 0 else 0.0 for i in range(5)])
    want = np.mean(alpha * T * T * kl + (1 - alpha) * ce)
    task = DistillationTask(temperature=T, alpha=alpha).fit_targets(["a", "b", "c"])
    targets = torch.as_tensor(np.concatenate([y[:, None], v], 1), dtype=torch.float32)
    out = task.loss(ModelOutput(torch.zeros(5, 2), torch.as_tensor(z, dtype=torch.float32)), {"targets": targets}, 0.5)
    assert float(out["loss"]) == pytest.approx(want, rel=1e-5)
    assert float(out["soft_loss"]) == pytest.approx(T * T * kl.mean(), rel=1e-5)


def test_unlabeled_rows_give_only_the_soft_term():
    z, v = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    none = torch.full((4,), -1)
    soft_only = distillation_loss(z, v, none, temperature=2.0, alpha=0.0)  # alpha 0: only the (absent) labels
    assert float(soft_only["loss"].detach()) == 0.0
    out = distillation_loss(z, v, none, temperature=2.0, alpha=0.4)
    assert float(out["loss"].detach()) == pytest.approx(0.4 * float(out["soft_loss"]), rel=1e-6)
    out["loss"].backward()  # the gradient pulls towards the teacher: zero once the student equals it
    z2 = v.clone().requires_grad_(True)
    distillation_loss(z2, v, none, temperature=2.0, alpha=0.4)["loss"].backward()
    assert z.grad.abs().sum() > 0 and z2.grad.abs().max() < 1e-6


def test_teacher_logits_runs_the_teacher_once_per_distinct_input():
    seen = []

    def predict(data):
        seen.extend(data.items)
        return np.tile(np.arange(2, dtype=np.float32), (len(data), 1))

    cached = TeacherLogits(predict, ["a", "b"])
    first = cached(LabeledData(["x", "y", "x"], None, "text"))
    again = cached(LabeledData(["y", "z", "x"], None, "text"))
    assert first.shape == (3, 2) and again.shape == (3, 2)
    assert sorted(seen) == ["x", "y", "z"] and cached.calls == 2 and cached.computed == 3
    cached(LabeledData(["z", "x"], None, "text"))
    assert cached.calls == 2  # everything known: the teacher does not run


def test_training_rows_append_unlabeled_and_put_teacher_columns_in_student_order():
    task = DistillationTask(teacher_classes=["b", "a"]).fit_targets(["a", "b"])
    assert task.classes == ["a", "b"]
    teacher = TeacherLogits(lambda d: np.array([[10.0, 20.0]] * len(d)), ["b", "a"])  # b: 10, a: 20
    data, targets = task.training_rows(LabeledData(["p", "q"], ["a", "b"], "text"), np.array([0, 1]),
                                       {"teacher": teacher, "unlabeled": LabeledData(["r"], None, "text")})
    assert data.items == ["p", "q", "r"] and data.labels is None
    np.testing.assert_array_equal(targets, [[0, 20, 10], [1, 20, 10], [-1, 20, 10]])


def test_teacher_with_other_classes_is_refused():
    task = DistillationTask().fit_targets(["a", "b"])
    teacher = TeacherLogits(lambda d: np.zeros((len(d), 2)), ["a", "c"])
    with pytest.raises(ValueError, match="teacher's classes"):
        task.training_rows(LabeledData(["p"], ["a"], "text"), np.array([0]), {"teacher": teacher})


def test_a_fit_runs_the_teacher_once_per_input_over_epochs_and_the_final_fit(image_data):
    """Three epochs, then the final fit on all labels: each input reaches the teacher once."""
    seen: list[bytes] = []

    def predict(data):
        seen.extend(digests(data.modality, data.items))
        return np.random.default_rng(len(seen)).normal(size=(len(data), 3)).astype(np.float32)

    train, _ = image_data
    extra = read_data(train)  # the same images, some of them given as unlabeled inputs too
    unlabeled = LabeledData(extra.items[:9], None, "image", extra.origins[:9])
    teacher = TeacherLogits(predict, ["blue", "green", "red"])
    est = Headstart(backbone="tiny:cnn", task=DistillationTask(teacher_classes=["blue", "green", "red"]),
                    strategy="fine_tuning", strategy_params={"epochs": 3, "init_head": "random"},
                    run={"check_shift": False}, verbose=False)
    est.fit(train, unlabeled=unlabeled, teacher=teacher)
    assert len(est.history_) == 3 and len(est.history_measured_) == 3  # measured fit + final fit
    assert len(seen) == len(set(seen)) == len(set(digests("image", extra.items)))
    assert list(est.predict(extra.subset(range(3)))) != [] and set(est.classes_) == {"blue", "green", "red"}


def test_a_fit_without_a_teacher_is_refused(text_data):
    est = Headstart(backbone="tfidf:1-2", task="distillation", strategy="feature_extraction", verbose=False)
    with pytest.raises(ValueError, match="task distillation needs teacher"):
        est.fit(text_data[0])


def test_teacher_logits_store_answers_a_later_run_without_the_teacher(tmp_path):
    def predict(data):
        return np.arange(2 * len(data), dtype=np.float32).reshape(-1, 2)

    first = TeacherLogits(predict, ["a", "b"], store=tmp_path / "t.safetensors")
    want = first(LabeledData(["x", "y"], None, "text"))
    later = TeacherLogits(lambda d: pytest.fail("the teacher ran again"), ["a", "b"], store=tmp_path / "t.safetensors")
    torch.testing.assert_close(later(LabeledData(["y", "x"], None, "text")), want.flip(0))
    assert later.calls == 0
