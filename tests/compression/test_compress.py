"""headstart compress: one folder per step, compress.json, the printed table and the frontier
plot; every registered step yields a model that is measured; fp16 bundles store half weights and
load as float32; the recommendation follows the target; bad input gets a clear error."""
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.compression.compress import STEPS, compress, recommend
from headstart.compression.measure import Measurement


@pytest.fixture(scope="module")
def compressed(tiny_bundles, tmp_path_factory):
    """Every registered step applied once to the tiny image bundle (short pruning settings)."""
    out = tmp_path_factory.mktemp("compress")
    train = tiny_bundles["img"].parent / "train"
    lines = []
    options = {"prune_steps": 1, "recover_steps": 1, "flops_reduction": 0.4, "latency_rounds": 1}
    summary = compress(tiny_bundles["img"], str(train), out, STEPS.list(), "size", str(train), options=options,
                       echo=lines.append)
    return out, summary, "\n".join(lines)


def test_every_step_writes_its_folder_and_a_table_row(compressed):
    out, summary, printed = compressed
    names = [r["name"] for r in summary["results"]]
    assert names == ["original", *STEPS.list()]
    for name in STEPS.list():
        assert (out / name).is_dir()
        assert any(line.startswith(f"{name} ") for line in printed.splitlines())
    saved = json.loads((out / "compress.json").read_text())
    assert saved["recommended"] in names and saved["target"] == "size"
    row = saved["results"][1]
    assert {"accuracy", "ci_low", "ci_high", "size_bytes", "parameters", "ms_batch1", "ms_batch32",
            "items_per_s"} <= set(row) and row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert (out / "frontier.png").stat().st_size > 1000 and "frontier" in (out / "report.html").read_text()


def test_compressed_bundles_load_predict_and_carry_their_lineage(compressed, tiny_bundles):
    out, summary, _ = compressed
    train = str(tiny_bundles["img"].parent / "train")
    for name in ("fp16", "pruned", "sparse", "int8"):
        est = headstart.load(out / name)
        assert len(est.predict(train)) == 36
        step = est.meta_["compression"]["steps"][-1]
        assert step["step"] == name and step["measured"]["n"] == 36
        assert f"`{name}`" in (out / name / "README.md").read_text()
    smaller = {r["name"]: r["parameters"] for r in summary["results"]}
    assert smaller["pruned"] < smaller["original"]


def test_fp16_stores_half_weights_and_runs_as_float32(compressed, tiny_bundles):
    out, _, _ = compressed
    with safe_open(str(out / "fp16" / "model.safetensors"), "pt") as f:
        assert str(f.get_tensor("backbone.blocks.0.0.weight").dtype) == "torch.float16"
    half, full = headstart.load(out / "fp16"), headstart.load(tiny_bundles["img"])
    assert {p.dtype for p in half.model_.parameters()} == {torch.float32}
    train = str(tiny_bundles["img"].parent / "train")
    np.testing.assert_allclose(half.decision_function(train), full.decision_function(train), atol=5e-2)


def test_int8_is_an_onnx_folder_with_its_lineage_and_measurement(compressed, tiny_bundles):
    out, summary, _ = compressed
    meta = json.loads((out / "int8" / "headstart.json").read_text())
    assert meta["format"] == "onnx" and meta["file"] == "model.int8.onnx"
    assert meta["compression"]["source"] == str(tiny_bundles["img"])
    assert [s["step"] for s in meta["compression"]["steps"]] == ["onnx", "int8"]
    assert meta["compression"]["steps"][-1]["measured"]["name"] == "int8"
    assert json.loads((out / "int8" / "export.json").read_text())["file"] == "model.int8.onnx"  # predict.py's


def _m(name, acc, size, ms):
    return Measurement(name, acc, acc - 0.01, acc + 0.01, 100, size, 10, ms, ms, 1000 / ms, name)


def test_recommendation_follows_the_target():
    results = [_m("original", 0.90, 100, 10.0), _m("int8", 0.895, 30, 4.0), _m("pruned", 0.85, 20, 2.0)]
    assert recommend(results, "accuracy", 0.01)[0] == "original"
    assert recommend(results, "size", 0.01)[0] == "int8"  # pruned is smaller but lost 5 points
    assert recommend(results, "latency", 0.10)[0] == "pruned"
    with pytest.raises(ValueError, match="unknown target 'speed'"):
        recommend(results, "speed", 0.01)


@pytest.mark.parametrize("args, message", [
    (["--steps", "int9"], "unknown compress step 'int9'; known: bf16, distilled, fp16, int8, pruned, sparse"),
    (["--steps", "pruned"], "fine-tunes on the training data: give it (--train DATA)"),
    (["--target", "speed"], "unknown target 'speed'"),
])
def test_bad_input_exits_with_a_clear_error(tiny_bundles, tmp_path, args, message):
    train = str(tiny_bundles["img"].parent / "train")
    r = CliRunner().invoke(app, ["compress", str(tiny_bundles["img"]), "--data", train, "--out", str(tmp_path / "c"),
                                 *args])
    assert r.exit_code == 1 and message in r.output


def test_a_folder_that_is_not_a_bundle_is_named(tmp_path):
    r = CliRunner().invoke(app, ["compress", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "c")])
    assert r.exit_code == 1 and "not a headstart bundle" in r.output


def test_a_tfidf_student_of_a_transformer_teacher_is_measured_through_its_own_preprocessing(tiny_bundles, tmp_path):
    """The student reads TF-IDF vocabulary ids, not the teacher's token ids: each model its own inputs."""
    train = tiny_bundles["txt"].parent / "train.csv"
    summary = compress(tiny_bundles["txt"], str(train), tmp_path / "out", ["distilled"], "size", str(train),
                       options={"latency_rounds": 1, "student": "tfidf:1-2"}, echo=lambda _: None)
    row = {r["name"]: r for r in summary["results"]}["distilled"]
    assert row["n"] == {r["name"]: r for r in summary["results"]}["original"]["n"] and 0.0 <= row["accuracy"] <= 1.0


def test_the_cli_passes_the_pruning_options_and_the_final_recovery_to_the_pruned_step(tiny_bundles, tmp_path):
    train = str(tiny_bundles["img"].parent / "train")
    r = CliRunner().invoke(app, ["compress", str(tiny_bundles["img"]), "--data", train, "--out", str(tmp_path / "c"),
                                 "--steps", "pruned", "--train", train, "--prune-steps", "1", "--recover-steps", "1",
                                 "--flops-reduction", "0.3", "--keep", "blocks.0.*", "--importance", "l1",
                                 "--recalibrate", "10", "--final-recover-steps", "4"])
    assert r.exit_code == 0, r.output
    step = headstart.load(tmp_path / "c" / "pruned").meta_["compression"]["steps"][-1]
    assert step["kept"] == ["blocks.0.*"] and step["importance"].startswith("L1")
    assert step["recovery"]["batchnorm_recalibration_inputs"] == 10
    assert step["recovery"]["final_round_optimizer_steps"] == 4 and step["rounds"][-1]["recovery_epochs"] == 2
