"""Zero-shot classification (headstart.zeroshot) and ``headstart zeroshot``: tiny random
encoders for the mechanics (texts: tiny:bert; images: tiny random CLIP / SigLIP checkpoints,
since no CLIP weights ship offline — so no test here says what a real CLIP scores), synthetic
embeddings for what calibration and self-training do."""
import csv
import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.heads import build_head
from headstart.zeroshot import (
    DEFAULT_IMAGE_TEMPLATES,
    DEFAULT_TEMPLATES,
    ZeroShot,
    class_vectors,
    confident_rows,
    parse_labels,
    prompts,
    zero_shot,
)

runner = CliRunner()
WORDS = {"pos": ["great", "wonderful", "superb"], "neg": ["awful", "boring", "dreadful"]}


def _reviews(path, n, extra_label=None):
    rnd = random.Random(0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            lab = "pos" if i % 2 == 0 else "neg"
            w.writerow([f"the film was {rnd.choice(WORDS[lab])}", extra_label if extra_label and i == 3 else lab])
    return path


def test_labels_as_a_comma_list_with_optional_descriptions():
    assert parse_labels("positive, negative") == {"positive": "positive", "negative": "negative"}
    assert parse_labels("fresh: a positive review,rotten: a negative review") == {
        "fresh": "a positive review", "rotten": "a negative review"}


def test_labels_from_a_txt_and_a_json_file(tmp_path):
    (tmp_path / "l.txt").write_text("fresh: a positive review\n\nrotten\n")
    (tmp_path / "l.json").write_text(json.dumps({"fresh": "good", "rotten": "bad"}))
    assert parse_labels(tmp_path / "l.txt") == {"fresh": "a positive review", "rotten": "rotten"}
    assert parse_labels(str(tmp_path / "l.json")) == {"fresh": "good", "rotten": "bad"}


@pytest.mark.parametrize("spec, message", [("a,b,a", r"\['a'\] given more than once"),
                                           ("only", "at least two classes"),
                                           ("a:,b", "expected 'label' or 'label: description'")])
def test_bad_label_lists_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_labels(spec)


def test_a_bad_json_labels_file_is_refused_naming_it(tmp_path):
    (tmp_path / "l.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"l.json: expected an object"):
        parse_labels(tmp_path / "l.json")


def test_prompts_fill_every_template_for_every_class():
    assert prompts(["good", "bad"], ["{label}", "It is {label}."]) == ["good", "It is good.", "bad", "It is bad."]
    assert len(DEFAULT_TEMPLATES) > 1


def _clusters(n=400, d=16, seed=0):
    """Two clusters that share a dominant direction; class 1's vector also points along a
    direction no text has (a wordier prompt), which lowers all its similarities, so raw
    similarity calls everything class 0."""
    g = torch.Generator().manual_seed(seed)
    shared, a, b, junk = torch.randn(4, d, generator=g)
    y = torch.arange(n) % 2
    x = torch.where(y[:, None] == 0, a, b) + 0.8 * torch.randn(n, d, generator=g) + 3 * shared
    v = torch.stack([shared + 0.3 * a, shared + 0.3 * b + 1.5 * junk])
    return x, v, y.numpy()


def test_calibration_stops_one_class_from_swallowing_everything():
    x, v, y = _clusters()
    zs = ZeroShot(self_train=False).fit(x, v, build_head("cosine", 16, 2))
    raw, cal = zs.stages_["raw"].argmax(1), zs.stages_["calibrated"].argmax(1)
    assert (raw == 0).mean() > 0.9
    assert (cal == y).mean() > (raw == y).mean() + 0.1


def test_self_training_fits_a_probe_on_the_surest_texts_and_the_head_applies_it():
    x, v, y = _clusters()
    head = build_head("cosine", 16, 2)
    zs = ZeroShot().fit(x, v, head)
    assert zs.self_training_.startswith("probe on the 40 texts")  # 10% of 400 / 2 classes, per class
    with torch.no_grad():
        assert np.allclose(head(x).numpy(), zs.stages_["self_trained"], atol=1e-4)
    assert (zs.stages_["self_trained"].argmax(1) == y).mean() > 0.9


def test_self_training_is_skipped_below_eight_per_class_naming_the_class():
    scores = np.array([[1.0, 0.0]] * 295 + [[0.0, 1.0]] * 5)  # 15 per class wanted; rotten has 5
    rows, _, why = confident_rows(scores, names=["fresh", "rotten"])
    assert len(rows) == 0 and "class 'rotten' has 5 confident texts" in why and "at least 8" in why


def test_zero_shot_bundle_round_trips_through_load_and_predict(tmp_path):
    data = _reviews(tmp_path / "r.csv", 40)
    est = zero_shot(data, "pos: good,neg: bad", backbone="tiny:bert", out=tmp_path / "zs", verbose=False)
    rep = est.metrics_["zero_shot"]
    assert set(rep["accuracy"]) == {"raw", "calibrated"} and rep["majority"] == 0.5
    assert rep["self_training"].startswith("skipped: class")  # 40 texts: 2 per class, 8 needed
    same = headstart.load(tmp_path / "zs")
    texts = ["the film was great", "the film was awful"]
    assert np.allclose(same.predict_proba(texts), est.predict_proba(texts), atol=1e-6)
    assert list(same.classes_) == ["pos", "neg"] and same.meta_["head"]["name"] == "cosine"
    assert same.meta_["strategy"]["name"] == "zero_shot"


def test_a_label_outside_the_given_classes_is_refused_naming_its_row_before_encoding(tmp_path):
    data = _reviews(tmp_path / "r.csv", 10, extra_label="meh")
    # an unknown backbone would fail when built: the label check comes first
    with pytest.raises(ValueError, match=r"r.csv:5: 'meh'.*\(pos, neg\)|1 row\(s\).*r.csv:5: 'meh'"):
        zero_shot(data, "pos,neg", backbone="tiny:no-such-encoder", verbose=False)


def test_a_template_without_a_label_slot_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no \{label\} slot"):
        zero_shot(["a text"], "a,b", templates=["This review is good."], backbone="tiny:bert", verbose=False)


def test_cli_zeroshot_writes_a_bundle_and_scores_it_beside_the_majority_rate(tmp_path):
    data = _reviews(tmp_path / "r.csv", 40)
    out = tmp_path / "zs"
    r = runner.invoke(app, ["zeroshot", str(data), "--labels", "pos: good,neg: bad", "--template",
                            "The film was {label}.", "--backbone", "tiny:bert", "--out", str(out),
                            "--cache-dir", str(tmp_path / "cache")])
    assert r.exit_code == 0, r.output
    assert "majority class 50.0%" in r.output and "calibrated" in r.output
    r = runner.invoke(app, ["predict", str(out), "the film was great", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["label"] in ("pos", "neg")


def test_cli_zeroshot_refuses_an_unknown_label_with_exit_code_1(tmp_path):
    data = _reviews(tmp_path / "r.csv", 10, extra_label="meh")
    r = runner.invoke(app, ["zeroshot", str(data), "--labels", "pos,neg", "--backbone", "tiny:bert",
                            "--out", str(tmp_path / "zs")])
    assert r.exit_code == 1 and "'meh'" in r.output and "r.csv:5" in r.output
    assert not (tmp_path / "zs").exists()


@pytest.mark.real
def test_mpnet_zero_shot_beats_the_majority_class_on_the_shipped_reviews(tmp_path):
    """The first 100 Rotten Tomatoes snippets of examples/ (few, to keep the real tier short),
    sentiment words with a review template."""
    from pathlib import Path

    import pandas as pd

    df = pd.read_csv(Path(__file__).resolve().parents[1] / "examples" / "rotten_tomatoes" / "test.csv").head(100)
    data = (df["text"].tolist(), df["label"].tolist())
    est = zero_shot(data, "fresh: positive,rotten: negative", templates=["This movie review is {label}."],
                    backbone="mpnet", verbose=False, runtime={"cache_dir": tmp_path})
    rep = est.metrics_["zero_shot"]
    assert est.model_.backbone.num_features == 768
    assert rep["accuracy"]["calibrated"] > rep["majority"] + 0.10


# -- images, with CLIP-style dual encoders ---------------------------------------------------
def test_the_prompt_ensemble_averages_unit_prompt_vectors_per_class():
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [5.0, 0.0]])  # 2 classes x 2 templates
    v = class_vectors(p, 2)  # by hand: mean([.6, .8], [1, 0]); mean([0, 1], [1, 0])
    assert torch.allclose(v, torch.tensor([[0.8, 0.4], [0.5, 0.5]], dtype=torch.float64))


def _clip(tmp_path, kind="clip"):
    from headstart.testing.clip import tiny_clip_dir

    return f"hf:{tiny_clip_dir(tmp_path / kind, kind)}"


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_zero_shot_images_predict_the_argmax_of_similarity_to_the_class_prompt_ensembles(image_data, tmp_path, kind):
    from headstart.data.sources import read_folder
    from headstart.features.cache import extract_features

    folder = image_data[1]  # 3 colour classes x 6 images
    est = zero_shot(folder, "red,green,blue", backbone=_clip(tmp_path, kind), calibrate=False, self_train=False,
                    verbose=False, runtime={"cache_dir": False})
    assert est.modality_ == "image" and est.meta_["strategy"]["params"]["templates"] == list(DEFAULT_IMAGE_TEMPLATES)
    bb, data = est.model_.backbone, read_folder(folder)
    x = torch.nn.functional.normalize(extract_features(bb, data).double(), dim=1)  # (18, E) image embeddings
    t = bb.encode_text(prompts(["red", "green", "blue"], DEFAULT_IMAGE_TEMPLATES)).double()  # (3 * 8, E)
    v = torch.nn.functional.normalize(t, dim=1).reshape(3, 8, -1).mean(1)  # the ensemble, by hand
    sims = x @ torch.nn.functional.normalize(v, dim=1).T  # (18, 3) cosine similarities
    assert est.predict(data).tolist() == [["red", "green", "blue"][j] for j in sims.argmax(1).tolist()]
    rep = est.metrics_["zero_shot"]
    assert rep["inputs"] == "images" and rep["scored_on"] == 18 and rep["majority"] == pytest.approx(1 / 3)


def test_zero_shot_images_need_a_dual_encoder(image_data):
    with pytest.raises(ValueError, match="no text tower: zero-shot images need a CLIP-style dual encoder"):
        zero_shot(image_data[1], "red,green,blue", backbone="tiny:cnn", verbose=False)


def test_a_flat_image_folder_is_classified_without_labels(image_data, tmp_path):
    import shutil

    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted(image_data[1].rglob("*.png"))[:5]:
        shutil.copy(f, flat / f.name)
    est = zero_shot(flat, "red,green,blue", backbone=_clip(tmp_path), templates=["a {label} square."],
                    verbose=False, runtime={"cache_dir": tmp_path / "c"})
    assert "accuracy" not in est.metrics_["zero_shot"] and est.metrics_["zero_shot"]["n"] == 5
    assert set(est.predict(sorted(flat.iterdir()))) <= {"red", "green", "blue"}


def test_cli_zeroshot_on_an_image_folder_writes_a_bundle_that_predict_loads(image_data, tmp_path):
    out = tmp_path / "zs"
    r = runner.invoke(app, ["zeroshot", str(image_data[1]), "--labels", "red: a red square,green,blue",
                            "--backbone", _clip(tmp_path), "--out", str(out), "--cache-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "zero-shot on 18 images" in r.output and "majority class 33.3%" in r.output
    assert "self-training: skipped: class" in r.output  # 18 images: 0 per class at 10%, 8 needed
    img = sorted((image_data[1] / "red").iterdir())[0]
    r = runner.invoke(app, ["predict", str(out), str(img), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["label"] in ("red", "green", "blue")
    same = headstart.load(out)
    assert same.model_.backbone.num_features == 16 and same.meta_["strategy"]["name"] == "zero_shot"


def test_a_csv_of_image_paths_is_read_through_its_path_column(image_data, tmp_path):
    files = sorted(image_data[1].rglob("*.png"))
    with open(tmp_path / "imgs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "colour"])
        w.writerows([str(p), p.parent.name] for p in files)
    est = zero_shot(tmp_path / "imgs.csv", "red,green,blue", backbone=_clip(tmp_path, "siglip"), verbose=False,
                    data_spec={"path_column": "file", "label_column": "colour"}, runtime={"cache_dir": False})
    assert est.modality_ == "image" and est.metrics_["zero_shot"]["scored_on"] == len(files) == 18
