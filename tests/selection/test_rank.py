import json

import pytest
import timm
import torch
from typer.testing import CliRunner

from headstart.backbones.timm import TimmBackbone
from headstart.cli import app
from headstart.data.sources import read_data
from headstart.selection import rank_backbones


def test_rank_scores_every_candidate_and_reuses_the_cache_on_a_second_call(image_data, tmp_path):
    data = read_data(image_data[0])
    specs = ["tiny:cnn", "scratch:tiny:cnn"]
    first = rank_backbones(data, specs, cache_dir=tmp_path, log=None)
    assert {r.backbone for r in first.rows} == set(specs)
    assert first.pick in specs and all(r.error is None for r in first.rows)
    assert not any(r.reused for r in first.rows)
    for r in first.rows:
        assert r.scores["leep"] is None and r.scores["nce"] is None  # random weights: no source task
        assert r.scores["logme"] is not None and 0 <= r.scores["knn"] <= 1
    second = rank_backbones(data, specs, cache_dir=tmp_path, log=None)
    assert all(r.reused for r in second.rows)
    assert [r.scores for r in second.rows] == [r.scores for r in first.rows]


def test_rank_orders_by_the_chosen_score_and_reports_a_broken_candidate(image_data, tmp_path):
    data = read_data(image_data[0])
    result = rank_backbones(data, ["tiny:cnn", "tiny:nope"], scores=["knn", "logme"], by="knn",
                            cache_dir=tmp_path, log=None)
    assert result.rows[-1].backbone == "tiny:nope" and "unknown tiny backbone" in result.rows[-1].error
    assert result.pick == "tiny:cnn" and result.by == "knn"
    assert "failed" in result.format()


def test_rank_refuses_unknown_scores(image_data):
    with pytest.raises(ValueError, match="unknown score"):
        rank_backbones(read_data(image_data[0]), ["tiny:cnn"], scores=["accuracy"], by="accuracy", log=None)


def test_rank_cli_prints_the_table_and_writes_json(image_data, tmp_path):
    out = tmp_path / "rank.json"
    res = CliRunner().invoke(app, ["rank", str(image_data[0]), "--backbones", "tiny:cnn,scratch:tiny:cnn",
                                   "--cache-dir", str(tmp_path / "c"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "pick:" in res.output
    assert json.loads(out.read_text())["pick"] in ("tiny:cnn", "scratch:tiny:cnn")


def test_timm_backbone_gives_features_and_source_logits_from_one_pass():
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    reference = model.eval()(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    bb = TimmBackbone("resnet10t", pretrained=True, model=model).eval()  # "pretrained": keeps the classifier
    assert bb.has_source_task() and "fc.weight" not in dict(bb.model.state_dict())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    feats, logits = bb.features_and_source_logits(x)
    assert torch.allclose(logits, reference, atol=1e-5)
    assert torch.allclose(feats, bb.forward_features(x), atol=1e-6)
    assert not TimmBackbone("resnet10t", pretrained=False).has_source_task()
