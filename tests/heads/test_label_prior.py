"""The class names' prior for the text probe: which names count as words, the prior as a linear
layer equal to calibrated zero-shot scores, the weight chosen by CV (0 for a useless prior), and
its fold into a fitted probe."""
import numpy as np
import pytest
import torch

from headstart.heads.label_prior import (DEFAULT_TEMPLATES, add_label_prior, are_words, choose_weight,
                                         class_vectors, prior_layer, prompt_texts)
from headstart.heads.linear import LinearHead
from headstart.heads.probe import fit_probe


def test_words_are_names_codes_and_numbers_are_not():
    assert are_words(["fresh", "rotten"]) and are_words(["not spam", "spam"]) and are_words(["Überraschung", "ok"])
    assert not are_words(["0", "1"]) and not are_words(["LABEL_0", "LABEL_1"]) and not are_words([0, 1])
    assert not are_words(["c3", "c4"]) and not are_words(["a", "b"])


def test_prompts_are_class_by_class_and_vectors_average_each_class_templates():
    texts = prompt_texts(["fresh", "rotten"])
    assert texts[:len(DEFAULT_TEMPLATES)] == [t.replace("{label}", "fresh") for t in DEFAULT_TEMPLATES]
    p = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 5.0]])  # 2 classes x 2 templates
    assert np.allclose(class_vectors(p, 2), [[1.0, 0.0], [0.0, 1.0]])


def test_prior_layer_is_the_calibrated_zero_shot_score_when_norms_are_equal():
    rng = np.random.RandomState(0)
    x = rng.randn(30, 8)
    x /= np.linalg.norm(x, axis=1, keepdims=True) / 2.0  # every norm 2: x.v / mean|x| is the cosine
    v = class_vectors(rng.randn(3, 8), 3)
    w, b = prior_layer(v, x)
    cos = x @ v.T / 2.0
    want = (cos - cos.mean(0)) / (cos - cos.mean(1, keepdims=True)).std()
    assert np.allclose(x @ w.T + b, want)


def test_weight_is_zero_for_a_useless_prior_and_positive_for_an_informative_one():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 50)
    weak = rng.randn(100, 2) * 0.1  # a probe that barely knows
    good = np.stack([-(2 * y - 1.0), 2 * y - 1.0], 1) + 0.3 * rng.randn(100, 2)
    assert choose_weight(weak, rng.randn(100, 2), y)[0] == 0.0
    assert choose_weight(weak, good, y)[0] > 0.0


def _data(n_per: int, seed: int = 0):
    """Two classes along direction e0 plus noise; the class 'names' embed along -e0 / +e0."""
    rng = np.random.RandomState(seed)
    y = np.repeat([0, 1], n_per)
    x = rng.randn(2 * n_per, 16) + 3.0
    x[:, 0] += 0.6 * (2 * y - 1)
    prompts = np.zeros((2 * len(DEFAULT_TEMPLATES), 16)) + 3.0
    prompts[:len(DEFAULT_TEMPLATES), 0] -= 3.0
    prompts[len(DEFAULT_TEMPLATES):, 0] += 3.0
    return torch.tensor(x, dtype=torch.float32), y, torch.tensor(prompts, dtype=torch.float32)


def test_an_informative_prior_is_added_to_the_fitted_probe():
    x, y, prompts = _data(8)
    head = LinearHead(16, 2)
    fit_probe(x, y, head, seed=0)
    before = head.fc.weight.detach().clone()
    info = add_label_prior(head, x, y, prompts, lambda f, t, h: fit_probe(f, t, h, C=1.0, seed=0), seed=0)
    assert info["weight"] > 0 and info["cv_log_loss_with"] < info["cv_log_loss"]
    assert not torch.allclose(before, head.fc.weight)


def test_no_prior_without_two_examples_of_every_class():
    x, y, prompts = _data(8)
    keep = np.r_[0, 8:16]  # one example of class 0
    head = LinearHead(16, 2)
    fit_probe(x[keep], y[keep], head, seed=0)
    before = head.fc.weight.detach().clone()
    info = add_label_prior(head, x[keep], y[keep], prompts, lambda f, t, h: fit_probe(f, t, h, seed=0))
    assert info["weight"] == 0.0 and "fewer than 2" in info["why"]
    assert torch.equal(before, head.fc.weight)


@pytest.mark.parametrize("names", [["fresh", "rotten"], ["negative review", "positive review"]])
def test_prompt_count_is_classes_times_templates(names):
    assert len(prompt_texts(names)) == len(names) * len(DEFAULT_TEMPLATES)
