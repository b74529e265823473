"""distill(): the student bundle is a normal bundle (loads and predicts exactly as the in-memory
student), carries its lineage in headstart.json and the model card, and a missing or corrupt
teacher bundle is refused with the reason."""
import json

import numpy as np
import pytest
from accelerate.utils import set_seed

import headstart
from headstart.backbones import build_backbone
from headstart.compression.distill import distill, fit_student, student_recipe
from headstart.data.unlabeled import read_unlabeled
from headstart.recipes import TEXT_DISTILL_TUNING
from tests.conftest import write_image_folder, write_text_csv


def test_student_bundle_loads_and_predicts_like_the_in_memory_student(tiny_bundles, tmp_path):
    train, test = write_text_csv(tmp_path / "train.csv", 30, 0), write_text_csv(tmp_path / "test.csv", 12, 1)
    est = fit_student(tiny_bundles["txt"], "tfidf:1-2", train, write_text_csv(tmp_path / "u.csv", 20, 5), test=test,
                      temperature=3.0, alpha=0.7, verbose=False)
    texts = read_unlabeled(test)
    loaded = headstart.load(est.save(tmp_path / "student"))
    np.testing.assert_allclose(loaded.decision_function(texts), est.decision_function(texts), atol=1e-6)
    assert list(loaded.predict(texts)) == list(est.predict(texts))
    assert not list(tmp_path.joinpath("student").rglob("*.pt*")) and not list(tmp_path.rglob("*.pkl"))


def test_lineage_names_the_teacher_in_json_and_card(tiny_bundles, tmp_path):
    out = distill(tiny_bundles["img"], "tiny:small_cnn", write_image_folder(tmp_path / "tr", 6, 0),
                  write_image_folder(tmp_path / "u", 3, 2), tmp_path / "student", test=write_image_folder(tmp_path / "te", 3, 1),
                  temperature=4.0, alpha=0.9, strategy_params={"steps": 4}, verbose=False)
    meta = json.loads((out / "headstart.json").read_text())
    teacher = json.loads((tiny_bundles["img"] / "headstart.json").read_text())
    step = meta["lineage"][-1]
    assert step["step"] == "distillation" and step["teacher"] == "img" and step["teacher_runs"] >= 1
    assert step["teacher_sha256"] == teacher["files"]["model.safetensors"]
    assert (step["temperature"], step["alpha"], step["student"]) == (4.0, 0.9, "tiny:small_cnn")
    assert 0 <= step["teacher_test_accuracy"] <= 1 and meta["task"]["name"] == "distillation"
    card = (out / "README.md").read_text()
    assert "Made by distillation: teacher img" in card and step["teacher_sha256"] in card


def test_missing_teacher_bundle_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"teacher bundle .*nowhere: cannot be loaded: .*headstart.json missing"):
        distill(tmp_path / "nowhere", "tfidf:1-2", write_text_csv(tmp_path / "t.csv", 10, 0), out=tmp_path / "s")


def test_corrupt_teacher_bundle_is_refused(tiny_bundles, tmp_path):
    import shutil

    bad = shutil.copytree(tiny_bundles["txt"], tmp_path / "bad")
    (bad / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="teacher bundle .*bad: cannot be loaded: .*SHA-256 does not match"):
        distill(bad, "tfidf:1-2", write_text_csv(tmp_path / "t.csv", 10, 0), out=tmp_path / "s")


def test_teacher_of_another_modality_is_refused(tiny_bundles, tmp_path):
    with pytest.raises(ValueError, match="teacher img is a image model but the data are text"):
        fit_student(tiny_bundles["img"], "tfidf:1-2", write_text_csv(tmp_path / "t.csv", 10, 0), verbose=False)


def test_student_recipe_trains_random_backbones_from_scratch():
    assert student_recipe("tiny:small_cnn")["strategy"] == "fine_tuning"
    assert student_recipe("tiny:small_cnn")["strategy_params"]["init_head"] == "random"
    # the teacher's cached outputs belong to the plain inputs: no augmented views
    assert student_recipe("tiny:small_cnn")["strategy_params"]["augment"] is False
    assert student_recipe("tfidf:1-2") == {"strategy": "feature_extraction"}
    assert student_recipe("minilm") == {"strategy": "auto"}


def test_student_recipe_fine_tunes_a_pretrained_text_student_whole_and_yields_to_another_strategy():
    assert student_recipe("minilm", "text", "fine_tuning") == {"strategy": "fine_tuning",
                                                               "strategy_params": TEXT_DISTILL_TUNING}
    assert student_recipe("tiny:small_cnn", "image", "lora") == {"strategy": "lora"}
    assert student_recipe("minilm", "text", "feature_extraction") == {"strategy": "feature_extraction"}


def test_transformer_student_fine_tunes_end_to_end_on_the_transfer_set(tiny_bundles, tmp_path):
    train, unlabeled = write_text_csv(tmp_path / "train.csv", 12, 0), write_text_csv(tmp_path / "u.csv", 8, 5)

    def student(lr: float) -> headstart.Headstart:
        return fit_student(tiny_bundles["txt"], "tiny:bert", train, unlabeled, strategy="fine_tuning", seed=0,
                           strategy_params={"lr": lr, "epochs": 1, "batch_size": 8}, verbose=False,
                           runtime={"cache_dir": tmp_path / "cache"})
    tuned, still = student(1e-3), student(1e-12)
    body = {k: v for k, v in tuned.model_.backbone.state_dict().items() if "encoder.layer.0." in k}
    moved = max(float((v - still.model_.backbone.state_dict()[k]).abs().max()) for k, v in body.items())
    set_seed(0)  # what both students started from: the fit's seed, then the backbone
    start = build_backbone("tiny:bert").state_dict()
    kept = max(float((v - start[k]).abs().max()) for k, v in still.model_.backbone.state_dict().items() if k in body)
    step = tuned.lineage_[-1]
    assert kept < 1e-6 and moved > 1e-4 and step["strategy"] == "fine_tuning" and step["teacher_inputs"] >= 8
