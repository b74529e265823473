"""backbone='auto' for text: encoders and TF-IDF compared by cross-validated probe accuracy."""
import numpy as np
import pytest

from headstart import Headstart
from headstart.data.sources import read_data
from headstart.selection.encoders import SCRATCH_TEXT, choose_text_encoder, installed_text_encoders
from tests.conftest import write_text_csv


def _keyword_texts(n: int, seed: int):
    """Labels carried by which of five made-up words (per class) a text holds, among 15 random
    filler words made of the same letters: TF-IDF sees the words, a randomly initialised
    character-level encoder's mean pooling barely does."""
    rng = np.random.RandomState(seed)

    def word() -> str:
        return "".join(rng.choice(list("abcdefghij"), 6))

    filler, keys = [word() for _ in range(300)], {"alpha": [word() for _ in range(5)], "beta": [word() for _ in range(5)]}
    texts, labels = [], []
    for i in range(n):
        lab = ["alpha", "beta"][i % 2]
        words = list(rng.choice(filler, 15)) + [rng.choice(keys[lab])]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(lab)
    return texts, labels


def test_tfidf_chosen_and_said_when_it_beats_every_encoder():
    from headstart.data.sources import from_sequences

    texts, labels = _keyword_texts(60, 0)
    data = from_sequences(texts, labels)
    y = np.array([0 if v == "alpha" else 1 for v in labels])
    choice = choose_text_encoder(data, y, fallback="tiny:bert", candidates=["tiny:bert"], seed=0)
    assert set(choice.scores) == {"tiny:bert", SCRATCH_TEXT}
    assert choice.scores[SCRATCH_TEXT] > choice.scores["tiny:bert"]
    assert choice.spec == SCRATCH_TEXT and choice.reason.startswith("NEGATIVE TRANSFER")


def test_too_few_examples_per_class_keep_the_default():
    from headstart.data.sources import from_sequences

    texts, labels = _keyword_texts(6, 0)
    choice = choose_text_encoder(from_sequences(texts, labels), np.array([i % 2 for i in range(6)]),
                                 fallback="minilm", candidates=["tiny:bert"])
    assert choice.spec == "minilm" and not choice.scores


def test_installed_text_encoders_lists_only_what_is_here():
    found = installed_text_encoders(("minilm", "bert_base"))
    assert "bert_base" not in found  # a hub-only entry is never a candidate (no download to compare)


def test_fit_with_auto_backbone_returns_the_tfidf_model_when_it_wins(tmp_path, monkeypatch):
    import headstart.selection.encoders as enc

    monkeypatch.setattr(enc, "TEXT_ENCODERS", ("tiny_text",))
    monkeypatch.setitem(enc.CATALOG, "tiny_text", enc.CATALOG["minilm"].__class__(
        "tiny_text", "tiny:bert", "text", "none", lambda: tmp_path))
    texts, labels = _keyword_texts(80, 1)
    est = Headstart(verbose=False, test_size=0.25, runtime={"cache_dir": False}).fit(texts, labels)
    assert est.backbone_choice_.spec == SCRATCH_TEXT
    assert est.model_.backbone.spec.startswith("tfidf:") and est.strategy_.name == "feature_extraction"
    assert est.metrics_["backbone_choice"]["spec"] == SCRATCH_TEXT
    assert est.metrics_["test"]["accuracy"] >= 0.75  # 20 held-out texts; chance is 0.5


def test_an_explicit_backbone_is_never_second_guessed(tmp_path):
    path = write_text_csv(tmp_path / "t.csv", 24, 0)
    est = Headstart(backbone="tiny:bert", verbose=False, test_size=0.0, runtime={"cache_dir": False}).fit(path)
    assert est.backbone_choice_ is None and est.model_.backbone.spec == "tiny:bert"


def test_a_warm_start_continues_the_encoder_the_first_fit_chose(tmp_path, monkeypatch):
    import headstart.selection.encoders as enc

    monkeypatch.setattr(enc, "TEXT_ENCODERS", ())  # TF-IDF against nothing: chosen
    texts, labels = _keyword_texts(40, 2)
    est = Headstart(verbose=False, test_size=0.0, runtime={"cache_dir": False}).fit(texts, labels)
    first = est.backbone_choice_
    est.set_params(warm_start=True).fit(texts, labels)
    assert est.backbone_choice_ is first and est.model_.backbone.spec == SCRATCH_TEXT
