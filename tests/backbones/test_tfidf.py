import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

import headstart
from headstart.api import Headstart
from headstart.backbones import build_backbone
from headstart.data.loaders import make_loader
from headstart.data.sources import read_data

TEXTS = ["A fine film, a fine cast.", "Dull and long; dull again", "fine fine fine", "", "the end"]


def _features(bb, texts):
    loader = make_loader(read_data(texts, ["x"] * len(texts), modality="text"), None, bb.pretrained_cfg,
                         bb.tokenizer(), train=False, batch_size=2)
    return np.concatenate([bb(batch["inputs"]).numpy() for batch in loader])


def test_tfidf_features_equal_scikit_learn_transform():
    bb = build_backbone("tfidf:1-2")
    bb.adapt_to(TEXTS)
    ref = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=20000).fit(TEXTS)
    assert bb.vocabulary == sorted(ref.vocabulary_, key=ref.vocabulary_.get)
    new = ["fine cast and a dull end", "unseen words only", "fine"]
    np.testing.assert_allclose(_features(bb, new), ref.transform(new).toarray(), atol=1e-6)


def test_tfidf_refuses_features_before_its_vocabulary_and_bad_ranges():
    with pytest.raises(ValueError, match="n-gram range"):
        build_backbone("tfidf:2-1")
    with pytest.raises(ValueError, match="vocabulary"):
        build_backbone("tfidf:1-1").adapt_to(["", "  "])


def test_tfidf_probe_learns_and_its_bundle_predicts_the_same(text_data, tmp_path):
    est = Headstart(backbone="tfidf:1-2", strategy="feature_extraction", verbose=False, run={"out": tmp_path / "b"}, runtime={"cache_dir": tmp_path / "c"}).fit(text_data[0], test=text_data[1])
    assert est.metrics_["test"]["accuracy"] >= 0.9  # the words decide the label in this data
    test = read_data(text_data[1])
    loaded = headstart.load(tmp_path / "b")
    assert list(loaded.predict(test)) == list(est.predict(test))
    assert loaded.model_.backbone.vocabulary == est.model_.backbone.vocabulary
