"""``compare``'s task-aware parts without training anything: scoring through the task, the
per-task baselines, the method registry's tasks, the headline metric's direction in verdicts, and
the nested subsets' strata."""
import numpy as np
import pytest

from headstart.data.sources import from_sequences
from headstart.evaluation.compare import (
    Comparison,
    _methods_for,
    nested_order,
    subset_strata,
)
from headstart.evaluation.methods import prior_cutoff, run_method
from headstart.evaluation.scoring import Headline, headline_for, score_outputs
from headstart.tasks import build_task


def _regression_comparison(maes: dict[str, list[float]]) -> Comparison:
    """A comparison of regression runs with the given MAE per seed (no training)."""
    task = build_task("regression").fit_targets([0.0, 1.0, 2.0])
    comp = Comparison(sizes=[50], methods=list(maes), seeds=[0, 1, 2], n_test=30, task="regression",
                      headline=headline_for(task, {"mae": 0.5, "rmse": 0.7, "r2": 0.3, "score": -0.5}))
    for m, values in maes.items():
        for seed, mae in enumerate(values):
            comp.runs.append({"method": m, "n": 50, "seed": seed, "mae": mae, "rmse": mae + 0.1, "r2": 0.5,
                              "score": -mae, "seconds": 1.0, "peak_mb": 1.0,
                              "transfer": m in ("linear_probe", "fine_tuning")})
    return comp


def test_regression_headline_is_mae_and_lower_is_better():
    task = build_task("regression").fit_targets([0.0, 1.0, 2.0])
    h = headline_for(task, {"mae": 0.5, "rmse": 0.7, "r2": 0.3, "score": -0.5})
    assert (h.name, h.key, h.direction, h.percent) == ("MAE", "mae", -1, False)


def test_lower_mae_wins_the_verdict_by_the_mae_difference():
    comp = _regression_comparison({"mean": [2.0, 2.1, 1.9], "classic": [0.50, 0.52, 0.48],
                                   "linear_probe": [0.40, 0.43, 0.41]})
    (verdict,) = comp.verdicts()
    assert verdict.startswith("Transfer (linear_probe) beat scratch (classic) by 0.0867 MAE (95% CI +"), verdict


def test_higher_mae_transfer_is_told_to_use_the_scratch_model():
    comp = _regression_comparison({"classic": [0.40, 0.41, 0.42], "linear_probe": [0.60, 0.61, 0.62]})
    (verdict,) = comp.verdicts()
    assert "Transfer did NOT beat scratch at 50 labels: classic is ahead of linear_probe by 0.2 MAE" in verdict


def test_fine_tuning_with_a_lower_mae_is_worth_it():
    comp = _regression_comparison({"linear_probe": [0.60, 0.61, 0.62], "fine_tuning": [0.30, 0.31, 0.32]})
    assert any(v.startswith("Fine-tuning was worth its 1-fold cost over the linear probe at 50 labels (+0.3 MAE")
               for v in comp.verdicts())


def test_the_table_names_the_headline_metric_and_the_secondary_ones():
    header = _regression_comparison({"mean": [2.0, 2.1, 1.9]}).format().splitlines()[0]
    assert "MAE (95% CI)" in header and "RMSE" in header and "R²" in header and "accuracy" not in header


def test_classification_keeps_its_accuracy_table_and_summary_keys():
    comp = Comparison(sizes=[10], methods=["majority"], seeds=[0], n_test=4)
    comp.runs.append({"method": "majority", "n": 10, "seed": 0, "accuracy": 0.5, "macro_f1": 0.25, "score": 0.5,
                      "seconds": 0.0, "peak_mb": 0.0, "transfer": False})
    (row,) = comp.summary()
    assert comp.headline == Headline() and (row["accuracy"], row["macro_f1"]) == (50.0, 25.0)
    assert comp.format().splitlines()[0].split()[:5] == ["method", "N", "accuracy", "%", "(95%"]


def test_registry_keeps_prototypes_and_majority_to_classification():
    chosen, skipped = _methods_for("regression", None)
    assert "mean" in chosen and not {"majority", "prior", "prototype"} & set(chosen)
    assert set(skipped) == {"prototype"}  # said in the log; the other tasks' floors go unsaid


def test_classification_counts_an_unseen_test_label_as_wrong():
    train = from_sequences(["a", "b", "c"], ["x", "x", "y"], "text")
    test = from_sequences(["d", "e"], ["x", "z"], "text")
    run = run_method("majority", train, test, {"task": "classification"})
    assert run.metrics["accuracy"] == 0.5 and run.metrics["confusion_matrix"] == [[1, 0], [0, 0]]


def test_multilabel_counts_an_unseen_test_label_as_missed():
    import torch

    task = build_task("multilabel").fit_targets(["a|b", "a"])
    test = from_sequences(["t1", "t2"], ["a|b", "a|new"], "text")
    perfect_on_known = torch.tensor([[9.0, 9.0], [9.0, -9.0]])
    m = score_outputs(task, test, perfect_on_known)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1)) and m["per_label"]["new"]["recall"] == 0.0


def test_mean_baseline_predicts_the_training_mean():
    train = from_sequences(["a", "b", "c"], [1.0, 2.0, 6.0], "text")
    test = from_sequences(["d", "e"], [3.0, 5.0], "text")
    run = run_method("mean", train, test, {"task": "regression"})
    assert np.allclose(run.predictions, 3.0) and run.metrics["mae"] == pytest.approx(1.0)


def test_prior_cutoff_keeps_the_labels_that_raise_training_micro_f1():
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=float)  # frequencies 1, 0.5, 0.25
    assert 0.25 < prior_cutoff(y) < 0.5  # predicting a and b: F1 12/15 beats a alone (8/11) and all three (14/19)


def test_regression_subsets_are_stratified_by_target_quintile():
    y = np.arange(100.0)
    first = nested_order(subset_strata("regression", y.tolist()), seed=0)[:10]
    assert sorted(set((y[first] // 20).astype(int).tolist())) == [0, 1, 2, 3, 4]


def test_multilabel_subsets_are_stratified_by_first_label():
    labels = ["a|b"] * 30 + ["c"] * 10
    first = nested_order(subset_strata("multilabel", labels, "|"), seed=0)[:8]
    assert sum(labels[i] == "c" for i in first) == 2
