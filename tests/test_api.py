import json
import warnings

import numpy as np
import pytest

import headstart
from headstart.api import Headstart


def quick(**kw):
    base = dict(backbone="tiny:cnn", strategy="feature_extraction", verbose=False)
    return Headstart(**{**base, **kw})


def test_constructor_only_stores_parameters():
    est = Headstart(backbone="nonexistent", strategy="nope", runtime={"batch_size": -3})
    assert est.get_params()["backbone"] == "nonexistent" and not hasattr(est, "model_")


def test_predict_returns_labels_as_in_the_data_and_proba_follows_classes(image_data):
    est = quick().fit(image_data[0], test=image_data[1])
    assert list(est.classes_) == ["blue", "green", "red"]
    pred = est.predict(image_data[1])
    proba = est.predict_proba(image_data[1])
    assert set(pred) <= set(est.classes_)
    assert np.array_equal(pred, est.classes_[proba.argmax(1)])


def test_integer_labels_stay_integers():
    rng = np.random.RandomState(0)
    X = [np.full((16, 16, 3), 40 + 150 * (i % 2), dtype=np.uint8) + rng.randint(0, 20, (16, 16, 3)).astype(np.uint8)
         for i in range(20)]
    y = [7 if i % 2 else 3 for i in range(20)]
    est = quick(test_size=0).fit(X, y)
    assert est.classes_.tolist() == [3, 7]
    assert est.predict(X[:4]).tolist() == [3, 7, 3, 7]


def test_fit_without_test_holds_out_a_stratified_split(image_data):
    est = quick().fit(image_data[0])
    assert est.metrics_["test"]["n"] == 6 and len(est.splits_["train"]) == 30


def test_single_class_is_a_clear_error(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("text,label\na,x\nb,x\n")
    with pytest.raises(ValueError, match="only one class"):
        Headstart(backbone="tiny:bert", verbose=False).fit(p)


def test_unknown_label_in_test_names_the_row(tmp_path, text_data):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine film,pos\nodd one,maybe\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: label 'maybe' does not occur in the training data"):
        Headstart(backbone="tiny:bert", strategy="feature_extraction", verbose=False, data={"on_bad_sample": "fail"}).fit(text_data[0], test=bad)
    est = Headstart(backbone="tiny:bert", strategy="feature_extraction", verbose=False).fit(text_data[0], test=bad)
    assert est.metrics_["test"]["n"] == 1 and est.data_report_.bad[0].origin.endswith("bad.csv:3")


def test_backbone_modality_must_match_the_data(text_data):
    with pytest.raises(ValueError, match="is for image but the data are text"):
        quick().fit(text_data[0])


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        Headstart().predict(["x"])


def test_second_fit_with_another_head_never_runs_the_backbone(tmp_path, image_data, counting):
    """The feature cache acceptance line: the 2nd fit reuses every feature, test set included."""
    kw = dict(backbone="counting:cnn", strategy="feature_extraction", runtime={"cache_dir": tmp_path / "cache"},
              verbose=False)
    first = Headstart(head="linear", **kw).fit(image_data[0], test=image_data[1])
    assert counting.seen == 36 + 18
    counting.seen = 0
    second = Headstart(head="mlp", head_params={"hidden": [32]}, strategy_params={"steps": 50}, **kw)
    second.fit(image_data[0], test=image_data[1])
    assert counting.seen == 0
    assert second.metrics_["test"]["n"] == first.metrics_["test"]["n"] == 18


def test_text_end_to_end_and_module_level_fit(text_data):
    est = headstart.fit(text_data[0], test=text_data[1], backbone="tiny:bert", strategy="fine_tuning",
                        strategy_params={"steps": 30, "lr": 3e-3}, verbose=False)
    assert est.predict(["the film was great and superb"]).tolist()[0] in ("pos", "neg")
    assert est.metrics_["test"]["accuracy"] >= 0.5


def test_auto_strategy_explains_its_choice(image_data, capsys):
    Headstart(backbone="tiny:cnn", strategy_params={"steps": 50}).fit(image_data[0], test=image_data[1])
    out = capsys.readouterr().out
    assert "strategy feature_extraction:" in out and "images" in out


def test_a_single_text_is_one_input_not_its_characters(text_data):
    est = Headstart(backbone="tiny:bert", strategy="feature_extraction", verbose=False).fit(text_data[0])
    assert est.predict("a quiet triumph").shape == (1,)
    assert est.predict("x" * 400).shape == (1,)  # not mistaken for a (too long) file name
    assert est.predict([]).shape == (0,)


def test_missing_path_is_a_clear_error(tmp_path, image_data):
    est = quick().fit(image_data[0])
    with pytest.raises(FileNotFoundError, match="photos-tst: no such file"):
        est.evaluate(tmp_path / "photos-tst")


def test_auto_rejects_parameters_of_the_strategy_it_did_not_pick(image_data):
    with pytest.raises(ValueError, match="auto picked feature_extraction, which has no parameter"):
        Headstart(backbone="tiny:cnn", strategy_params={"freeze": "first:1"}, verbose=False).fit(image_data[0])


def test_mixed_label_types_are_kept_as_given():
    from headstart.data.sources import from_sequences
    assert from_sequences(["a", "b"], np.array([1, 2])).labels == [1, 2]
    assert from_sequences(["a", "b"], [1, "x"]).labels == [1, "x"]


def test_warm_start_continues_from_the_fitted_model(image_data):
    train, test = image_data
    params = dict(backbone="tiny:cnn", strategy="fine_tuning", verbose=False, test_size=0.0)
    first = Headstart(**params, strategy_params={"steps": 8}).fit(train)
    before = first.predict_proba(test)
    frozen = {"steps": 8, "lr": 0.0, "head_lr": 0.0}  # a second fit that cannot move any weight
    first.set_params(warm_start=True, strategy_params=frozen).fit(train)
    np.testing.assert_allclose(first.predict_proba(test), before, atol=1e-5)  # kept model and head
    cold = Headstart(**params, strategy_params=frozen).fit(train)  # control: a fresh model differs
    assert not np.allclose(cold.predict_proba(test), before, atol=1e-3)
    head = [p.detach().clone() for p in first.model_.head.parameters()]
    first.set_params(strategy_params={**frozen, "head_lr": 0.05}).fit(train)  # the kept head trains on
    assert any(not np.allclose(a.numpy(), b.detach().numpy()) for a, b in zip(head, first.model_.head.parameters()))


def test_warm_start_refuses_another_backbone(image_data):
    est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", strategy_params={"steps": 4}, verbose=False,
                    test_size=0.0).fit(image_data[0])
    with pytest.raises(ValueError, match="warm_start"):
        est.set_params(warm_start=True, backbone="tiny:small_cnn").fit(image_data[0])


def test_without_a_test_set_the_returned_model_trains_on_every_label(image_data):
    kw = dict(backbone="tiny:cnn", strategy="feature_extraction", verbose=False, runtime={"cache_dir": False})
    est = Headstart(**kw).fit(image_data[0])
    assert est.metrics_["n_train"] == 36 and est.metrics_["test"]["n"] == 6  # measured on the held-out 20%
    assert "trained on all 36 labeled examples" in est.metrics_["estimate"]
    kept = Headstart(final_fit="split", **kw).fit(image_data[0])
    assert kept.metrics_["n_train"] == 30 and "estimate" not in kept.metrics_
    assert kept.metrics_["test"]["accuracy"] == est.metrics_["test"]["accuracy"]  # same measurement


def test_nested_parameters_follow_scikit_learns_protocol():
    est = Headstart(strategy="fine_tuning", strategy_params={"lr": 1e-3})
    est.set_params(strategy__lr=1e-4, runtime__batch_size=8, data__label_column="tags")
    p = est.get_params()
    assert p["strategy__lr"] == 1e-4 and p["runtime__batch_size"] == 8 and p["data__label_column"] == "tags"
    assert est.strategy_params == {"lr": 1e-4}
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        est.set_params(nope=1)


@pytest.mark.parametrize("strategy", ["feature_extraction", "fine_tuning"])
def test_predict_warns_on_a_clearly_shifted_batch_and_not_on_held_out_inputs(tmp_path, strategy):
    from headstart.adaptation.reference import InputShiftWarning
    from tests.conftest import write_image_folder, write_inverted

    est = quick(strategy=strategy, strategy_params={"steps": 30} if strategy == "fine_tuning" else None,
                runtime={"cache_dir": tmp_path / "c"}).fit(write_image_folder(tmp_path / "train", 30, 0))
    assert est.reference_.source == "training data" and len(est.reference_.rows) == 90
    for seed in range(1, 4):  # held-out inputs from the training distribution: never a warning
        held = write_image_folder(tmp_path / f"held{seed}", 15, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", InputShiftWarning)
            est.predict(held)
        assert est.input_check_ is not None and not est.input_check_.shifted
    with pytest.warns(InputShiftWarning, match="these 45 inputs differ from the training data"):
        est.predict_proba(write_inverted(held, tmp_path / "inverted"))
    assert est.input_check_.farther > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputShiftWarning)  # ood_score checks the batch too
        assert np.median(est.ood_score(tmp_path / "inverted")) > 3 * np.median(est.ood_score(held))


def test_a_bundle_without_a_feature_reference_predicts_without_checking(tmp_path):
    from tests.conftest import write_image_folder, write_inverted

    train = write_image_folder(tmp_path / "train", 12, 0)
    quick(run={"out": tmp_path / "b"}).fit(train)
    meta = json.loads((tmp_path / "b" / "headstart.json").read_text())
    assert meta["reference"]["rows"] == 36 and (tmp_path / "b" / "reference.safetensors").is_file()
    del meta["reference"], meta["files"]["reference.safetensors"]  # as written before the reference existed
    (tmp_path / "b" / "headstart.json").write_text(json.dumps(meta))
    (tmp_path / "b" / "reference.safetensors").unlink()
    old = headstart.load(tmp_path / "b")
    inverted = write_inverted(train, tmp_path / "inverted")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(old.predict(inverted)) == 36 and old.input_check_ is None
    with pytest.raises(ValueError, match="no feature reference"):
        old.ood_score(inverted)


def test_a_fit_asked_for_no_feature_reference_keeps_none_and_predicts_unchecked(tmp_path):
    from tests.conftest import write_image_folder

    train = write_image_folder(tmp_path / "train", 12, 0)
    est = quick(run={"reference": False}, runtime={"cache_dir": tmp_path / "c"}).fit(train)
    assert est.reference_ is None  # the planner's trial runs: only the model it returns needs one
    assert len(est.predict(train)) == 36 and est.input_check_ is None


def test_text_pooling_from_preprocessing_is_saved_and_reloaded(tmp_path, text_data):
    est = Headstart(backbone="tiny:bert", strategy="feature_extraction", preprocessing={"pooling": "mean_last_half"},
                    verbose=False, runtime={"cache_dir": tmp_path / "c"}, run={"out": tmp_path / "b"}).fit(text_data[0])
    loaded = headstart.load(tmp_path / "b")
    assert est.model_.backbone.pretrained_cfg.pooling == loaded.model_.backbone.pretrained_cfg.pooling == "mean_last_half"
    assert loaded.predict(text_data[1]).tolist() == est.predict(text_data[1]).tolist()


def test_an_explicit_strategy_keeps_the_encoders_own_pooling(text_data):
    """fit's defaults choose the pooling only for their own frozen probe (``few_label_text_pooling``)."""
    est = Headstart(backbone="tiny:bert", strategy="feature_extraction", verbose=False).fit(text_data[0])
    assert est.pooling_ is None and est.model_.backbone.pretrained_cfg.pooling == "mean"
