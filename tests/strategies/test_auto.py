import pytest

from headstart.strategies import choose


@pytest.mark.parametrize("modality,n,expected", [
    ("image", 100, "feature_extraction"), ("image", 4999, "feature_extraction"), ("image", 20000, "fine_tuning"),
    ("text", 16, "feature_extraction"), ("text", 64, "fine_tuning"), ("text", 500, "fine_tuning")])
def test_auto_picks_by_modality_and_size(modality, n, expected):
    strategy, reason = choose(modality, n, 10)
    assert strategy.name == expected and str(n) in reason


def test_text_fine_tuning_uses_the_measured_recipe():
    s, _ = choose("text", 500, 2)
    assert (s.init_head, s.batch_size, s.epochs, s.lr, s.head_lr) == ("random", 8, 5, 5e-5, 5e-4)
