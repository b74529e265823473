import pytest

from headstart.export.card import model_card, wilson_interval


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson_interval(0.8, 100)  # Wilson 95%: 0.7112 .. 0.8666
    assert lo == pytest.approx(0.7112, abs=1e-4) and hi == pytest.approx(0.8666, abs=1e-4)


def _meta(imbalance):
    return {"backbone": {"spec": "tiny:cnn", "num_features": 64,
                         "pretrained_cfg": {"license": "apache-2.0", "input_size": 32, "mean": [0.5] * 3,
                                            "std": [0.5] * 3, "interpolation": "bilinear"}},
            "modality": "image", "classes": ["a", "b"], "head": {"name": "linear", "params": {}},
            "metrics": {"n_train": 10, "fit_seconds": 1.0,
                        "test": {"n": 100, "accuracy": 0.8, "macro_f1": 0.8, "per_class": {}}},
            "data": {"counts": {"train": {"a": 40, "b": 8}}, "imbalance": imbalance, "bad": [],
                     "warnings": ["train: 2 near duplicate(s)"]}}


def test_card_states_the_interval_the_data_imbalance_warnings_and_licence():
    card = model_card(_meta(5.0))
    assert "0.711" in card and "Imbalanced classes (5.0:1)" in card
    assert "near duplicate" in card and "apache-2.0" in card
    assert "Imbalanced" not in model_card(_meta(1.0))
