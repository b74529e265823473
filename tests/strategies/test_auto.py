import pytest

from headstart import recipes
from headstart.strategies import choose
from headstart.strategies.auto import contrastive_default, few_label_text_pooling


@pytest.mark.parametrize("modality,n,expected", [
    ("image", 100, "feature_extraction"), ("image", 4999, "feature_extraction"), ("image", 20000, "fine_tuning"),
    ("text", 16, "feature_extraction"), ("text", 64, "fine_tuning"), ("text", 500, "fine_tuning")])
def test_auto_picks_by_modality_and_size(modality, n, expected):
    strategy, reason = choose(modality, n, 10)
    assert strategy.name == expected and str(n) in reason


def test_text_fine_tuning_uses_the_measured_recipe():
    s, _ = choose("text", 500, 2)
    assert (s.init_head, s.batch_size, s.epochs, s.lr, s.head_lr) == ("random", 8, 5, 5e-5, 5e-4)


def test_time_series_fine_tune_the_small_cnn_with_fawaz_recipe():
    s, reason = choose("timeseries", 50, 2)
    assert (s.name, s.init_head, s.lr, s.layer_decay, s.batchnorm, s.steps) == (
        "fine_tuning", "random", 2e-3, 1.0, "train", 400)
    assert "50 series" in reason and "Fawaz" in reason


def test_reasons_name_only_what_applies_to_the_task():
    """Label smoothing is a classification loss; overlapping labels have no 'per class' count."""
    _, text_reg = choose("text", 500, 0, "regression")
    _, text_cls = choose("text", 500, 2, "classification")
    _, img_ml = choose("image", 200, 10, "multilabel")
    assert "smoothing" not in text_reg and "smoothing" in text_cls
    assert "10 labels" in img_ml and "per class" not in img_ml


@pytest.mark.parametrize("modality,n,classes,switches", [
    ("text", 16, 2, True), ("text", 64, 2, True), ("text", 128, 2, True), ("text", 640, 10, True),
    ("text", 15, 2, False), ("text", 500, 2, False), ("text", 129, 2, False), ("image", 64, 2, False),
    ("text", 64, 1, False)])
def test_contrastive_default_only_for_a_few_labelled_texts_per_class(modality, n, classes, switches):
    """fit's defaults tune the body on pairs between the recipe's bounds (from 8 per class, measured there);
    N=500 (250 per class) keeps the fine-tune, under 16 the frozen probe stays."""
    why = contrastive_default(modality, n, classes)
    assert (why is not None) == switches
    if switches:
        assert f"{n} texts" in why and "contrastive" in why


@pytest.mark.parametrize("modality,n,frozen,default,expected", [
    ("text", 16, True, True, "mean_last_half"), ("text", 63, True, True, "mean_last_half"),
    ("text", 64, True, True, None), ("text", 16, False, True, None), ("text", 16, True, False, None),
    ("image", 16, True, True, None)])
def test_few_label_text_pooling_only_for_the_probe_on_the_default_encoder_under_64_texts(
        modality, n, frozen, default, expected):
    """Measured at 8 labels per class on MiniLM, frozen and tuned; from 64 the tuned body keeps the last layer."""
    assert few_label_text_pooling(modality, n, frozen, default) == expected


@pytest.mark.parametrize("n,steps", [(16, 10), (32, 20), (63, 39), (64, 40), (640, 40)])
def test_contrastive_budget_shrinks_with_the_labels_below_64(n, steps):
    """The same passes over the labels: 40 steps of 16 texts at 64, proportionally fewer below."""
    assert recipes.contrastive_steps(n) == steps
    strategy, why = choose("text", n, 2, "contrastive", tunes_body=True)
    assert strategy.max_steps == strategy.steps == steps and f"({steps} optimizer steps)" in why
