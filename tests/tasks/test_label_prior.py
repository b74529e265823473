"""The classification task's class-name prior: on for text whose class names are words, off
for codes, numbers and other modalities, refused when forced where it cannot apply; a text
probe fit records the weight CV chose."""
import pytest

from headstart import Headstart
from headstart.heads.label_prior import DEFAULT_TEMPLATES
from headstart.tasks import build_task
from tests.conftest import write_text_csv


def _task(labels, **kw):
    return build_task("classification", **kw).fit_targets(labels)


def test_auto_prompts_word_names_for_text_only():
    task = _task(["rotten", "fresh", "fresh"])
    assert task.label_prompts("text")[0] == DEFAULT_TEMPLATES[0].replace("{label}", "fresh")  # sorted classes
    assert len(task.label_prompts("text")) == 2 * len(DEFAULT_TEMPLATES)
    assert task.label_prompts("image") is None
    assert _task(["0", "1"]).label_prompts("text") is None and _task([0, 1]).label_prompts("text") is None
    assert _task(["fresh", "rotten"], label_prior=False).label_prompts("text") is None


def test_forcing_the_prior_refuses_codes_and_non_text():
    with pytest.raises(ValueError, match="not all words"):
        _task(["LABEL_0", "LABEL_1"], label_prior=True).label_prompts("text")
    with pytest.raises(ValueError, match="this data is image"):
        _task(["cat", "dog"], label_prior=True).label_prompts("image")
    with pytest.raises(ValueError, match="label_prior must be"):
        _task(["cat", "dog"], label_prior="yes")


def test_contrastive_hands_the_prior_setting_to_its_head_task():
    task = build_task("contrastive", label_prior=False).fit_targets(["a b", "c d"])
    assert task.head_after_body().label_prior is False


def test_a_text_probe_fit_records_the_prior_weight_and_off_turns_it_off(tmp_path):
    data = write_text_csv(tmp_path / "train.csv", 20, 0)  # labels "pos" / "neg": words
    kw = dict(backbone="tiny:bert", strategy="feature_extraction", test_size=0.0, verbose=False,
              runtime={"cache_dir": False})
    on = Headstart(**kw).fit(data)
    off = Headstart(**kw, task_params={"label_prior": False}).fit(data)
    assert on.history_[-1]["label_prior_weight"] >= 0.0 and "label_prior" not in off.history_[-1]
