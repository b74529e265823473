"""Records decode every task's outputs once: labels and probabilities from the same logits."""
import numpy as np
import torch

from headstart.inference import flat_row, records
from headstart.tasks import build_task


def test_classification_record_has_the_argmax_label_and_softmax_probabilities():
    task = build_task("classification").load_state({"classes": ["a", "b"]})
    rec = records(task, torch.tensor([[0.0, 2.0]]))[0]
    assert rec["label"] == "b" and np.isclose(rec["probabilities"]["b"], 1 / (1 + np.exp(-2)))
    assert flat_row("x", rec) == {"input": "x", "label": "b", **{f"p_{k}": v for k, v in rec["probabilities"].items()}}


def test_multilabel_record_lists_the_labels_over_their_thresholds():
    task = build_task("multilabel").load_state({"classes": ["fun", "long", "sad"], "thresholds": [0.5, 0.5, 0.5]})
    rec = records(task, torch.tensor([[3.0, -3.0, 1.0]]))[0]
    assert rec["labels"] == ["fun", "sad"] and flat_row("x", rec, ";")["label"] == "fun;sad"
