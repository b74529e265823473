"""The adaptation summary: its figures are what a direct evaluation gives, target_test labels
never reach training, and the label-free pick is set beside the oracle's."""
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from headstart import Headstart
from headstart.adaptation.summary import _choices
from tests.conftest import write_image_folder

FAST = {"epochs": 1, "init_head": "random"}


def _domains(tmp_path):
    src = write_image_folder(tmp_path / "src", 8)
    tgt = write_image_folder(tmp_path / "tgt", 5, seed=1)
    tt = write_image_folder(tmp_path / "tt", 4, seed=2)
    return src, tgt, tt


def _fit(adapt, src, tgt, tt, **kw):
    params = {"strategy_params": FAST} if adapt == "coral" else {}
    return Headstart(backbone="tiny:cnn", adapt=adapt, verbose=False, final_fit="split",
                     runtime={"cache_dir": False}, **params, **kw).fit(src, unlabeled=tgt, target_test=tt)


def test_figures_match_a_direct_evaluation_and_the_source_only_probe_is_a_plain_fit(tmp_path):
    src, tgt, tt = _domains(tmp_path)
    est = _fit("coral", src, tgt, tt)
    ad = est.adaptation_
    assert ad.accuracy["target_test"]["adapted"] == pytest.approx(est.evaluate(tt)["accuracy"])
    assert ad.accuracy["source_test"]["adapted"] == pytest.approx(est.metrics_["test"]["accuracy"])
    # the baseline: a linear probe on the pretrained features, fitted on the same split (same seed)
    plain = Headstart(backbone="tiny:cnn", strategy="feature_extraction", final_fit="split", verbose=False,
                      runtime={"cache_dir": False}).fit(src)
    assert ad.accuracy["target_test"]["source_only"] == pytest.approx(plain.evaluate(tt)["accuracy"])
    assert ad.accuracy["source_test"]["source_only"] == pytest.approx(plain.metrics_["test"]["accuracy"])
    per_class = {r["class"]: r for r in ad.per_class}
    recall = plain.evaluate(tt)["per_class"]
    assert all(per_class[c]["source_only"] == pytest.approx(recall[c]["recall"]) for c in recall)
    assert ad.shift_before.n_source == ad.shift_after.n_source == len(est.splits_["train"])


def _permute_labels(folder, tmp_path):
    """The same images, every class folder renamed to the next class: all labels wrong."""
    out = tmp_path / "tt-permuted"
    names = sorted(p.name for p in folder.iterdir())
    for a, b in zip(names, names[1:] + names[:1]):
        shutil.copytree(folder / a, out / b)
    return out


@pytest.mark.parametrize("adapt", ["auto", "coral"])
def test_target_test_labels_never_reach_the_fitted_model(tmp_path, adapt):
    src, tgt, tt = _domains(tmp_path)
    a = _fit(adapt, src, tgt, tt)
    b = _fit(adapt, src, tgt, _permute_labels(tt, tmp_path))
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.adaptation_.label_free == b.adaptation_.label_free  # the label-free choice did not move either
    assert a.adaptation_.accuracy["target_test"] != b.adaptation_.accuracy["target_test"]  # the labels were read


def test_label_free_pick_beside_the_oracle_with_the_gap_in_points():
    est = SimpleNamespace(task_=SimpleNamespace(choose=False))
    lf, oracle = _choices(est, {"source_only": -0.2, "adapted": -0.5}, {"source_only": 0.8, "adapted": 0.7})
    assert lf["pick"] == "adapted" and lf["returned"] == "adapted" and not lf["acts_on_it"]
    assert oracle["pick"] == "source_only" and oracle["gap_points"] == pytest.approx(10.0)
    est = SimpleNamespace(task_=SimpleNamespace(choose=True, choice_={"kept": "source_only"}))
    lf, oracle = _choices(est, {"source_only": -0.5, "adapted": -0.5}, None)
    assert lf["pick"] == "source_only" and lf["returned"] == "source_only" and oracle is None  # ties: no adaptation


def test_a_class_the_adapted_model_loses_is_flagged(tmp_path):
    src, tgt, tt = _domains(tmp_path)
    ad = _fit("feature_align", src, tgt, tt).adaptation_
    ad.per_class[0]["adapted"] = 0.05
    assert ad.collapsed()["adapted"] == [ad.per_class[0]["class"]]
    assert ad.to_dict()["collapsed_classes"]["adapted"] == [ad.per_class[0]["class"]]


def test_target_test_without_labels_or_without_adapt_is_refused(tmp_path):
    src, tgt, _ = _domains(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted(tgt.rglob("*.png"))[:3]:
        shutil.copy(p, flat / p.name)
    with pytest.raises(ValueError, match="target_test"):
        Headstart(backbone="tiny:cnn", verbose=False).fit(src, target_test=src)
    with pytest.raises(ValueError, match="no labels"):
        _fit("feature_align", src, tgt, [str(p) for p in sorted(flat.iterdir())])


def test_summary_without_target_labels_has_no_oracle(tmp_path):
    src, tgt, _ = _domains(tmp_path)
    est = Headstart(backbone="tiny:cnn", adapt="feature_align", verbose=False, final_fit="split",
                    runtime={"cache_dir": False}).fit(src, unlabeled=tgt)
    ad = est.adaptation_
    assert ad.oracle is None and "target_test" not in ad.accuracy and not ad.per_class
    assert np.isfinite(ad.shift_after.mmd2) and len(ad.lines()) == 3


def test_adabn_after_features_normalise_each_domain_with_its_own_statistics(tmp_path):
    src, tgt, tt = _domains(tmp_path)
    est = Headstart(backbone="tiny:cnn", adapt="adabn", strategy="feature_extraction", verbose=False,
                    final_fit="split", runtime={"cache_dir": False}).fit(src, unlabeled=tgt, target_test=tt)
    ad = est.adaptation_
    assert "own BatchNorm statistics" in ad.after_features and "linear probe" in ad.baseline
    assert ad.accuracy["target_test"]["adapted"] == pytest.approx(est.evaluate(tt)["accuracy"])
