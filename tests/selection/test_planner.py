import math

import numpy as np
import pytest

import headstart
from headstart.selection.planner import LADDER, RUNGS, OutOfBudget, Ladder, parse_budget, stratified_folds


class ScriptedPlanner(Ladder):
    """The planner's decisions on scripted results: ``accs[(rung, fidelity)]`` (default by rung),
    ``seconds[rung]`` per unit of budget (default 0.1 s a fold for cheap rungs, 1 s for costly
    ones), on a scripted clock that each run advances by its seconds. A costly run that would
    pass its deadline is stopped as the step guard stops it: after 3 of its 100 steps."""

    def __init__(self, accs, seconds=None, **kw):
        # the transfer ladder of images (zero-shot and contrastive tuning: the tests that name them)
        kw.setdefault("rungs", [r for r in LADDER if r not in ("scratch", "tfidf", "zero_shot", "contrastive")])
        super().__init__({"seed": 0}, log=None, **kw)
        self.accs, self.secs, self.calls, self.starts = accs, seconds or {}, [], []
        self.clock = 0.0
        self._now = lambda: self.clock

    def _run(self, rung, fidelity, fit, val, start=None, deadline=math.inf):
        self.calls.append((rung, fidelity, len(fit)))
        costly = RUNGS.get(rung).trains_backbone
        secs = self.secs.get(rung, 1.0 if costly else 0.1) * (fidelity - (start[1] if start else 0.0))
        if costly and self.clock + secs > deadline:  # 3 of 100 steps, at the pace of the whole run
            self.clock = min(deadline, self.clock + 0.03 * secs)
            raise OutOfBudget(3, 100, secs / 100, self.clock + secs - deadline)
        self.clock += secs
        if start is not None:  # a continued run carries the model it continued
            assert start[0].rsplit(":", 1)[0] == f"model:{rung}:{start[1]}", start
            self.starts.append((rung, start[1], fidelity))
        acc = self.accs.get((rung, fidelity), self.accs.get(rung, 0.0))
        correct = None
        if val is not None:  # the first round(acc * n) validation examples right: nested, so paired
            correct = np.arange(len(val)) < round(acc * len(val))
        return f"model:{rung}:{fidelity}:{len(fit)}", correct, secs


@pytest.fixture
def data():  # 200 texts: 5 folds of 40, the first the held-out split
    return headstart.data.sources.from_sequences([f"text {i}" for i in range(200)], ["a", "b"] * 100, "text")


def test_the_ladder_stops_climbing_when_a_rung_does_not_beat_the_one_below(data):
    p = ScriptedPlanner({"linear_probe": 0.80, "prototype": 0.70, "mlp_head": 0.75, "partial_ft": 0.70,
                         "full_ft": 0.95})
    plan, model = p.run(data)
    assert ("full_ft", 0.25, 160) not in p.calls  # never tried: partial_ft did not beat the probe
    assert plan.pick == "linear_probe" and not plan.negative_transfer
    assert model == "model:linear_probe:1.0:200"  # a cached-feature rung is refitted on all the data
    assert any("stop climbing" in d for d in plan.decisions)


def test_successive_halving_runs_a_winning_fine_tune_to_full_budget_only_while_it_pays(data):
    accs = {"linear_probe": 0.70, "prototype": 0.6, "mlp_head": 0.6, "partial_ft": 0.75,
            ("full_ft", 0.25): 0.80, ("full_ft", 0.5): 0.86, ("full_ft", 1.0): 0.90}
    p = ScriptedPlanner(accs)
    plan, model = p.run(data)
    assert [(t.rung, t.fidelity) for t in plan.trials if t.rung == "full_ft"] == [
        ("full_ft", 0.25), ("full_ft", 0.5), ("full_ft", 1.0)]
    assert ("partial_ft", 0.5) not in [(t.rung, t.fidelity) for t in plan.trials]  # halved away
    assert plan.pick == "full_ft" and plan.pick_fidelity == 1.0
    # each higher budget continues the run below it; the pick is then trained again on all the data
    assert p.starts == [("full_ft", 0.25, 0.5), ("full_ft", 0.5, 1.0)]
    assert model == "model:full_ft:1.0:200"
    assert any("trained again on all 200 examples" in d for d in plan.decisions)
    flat = {**accs, ("full_ft", 0.5): 0.805}
    plan, _ = ScriptedPlanner(flat).run(data)
    assert ("full_ft", 1.0) not in [(t.rung, t.fidelity) for t in plan.trials]


def test_negative_transfer_is_detected_and_the_scratch_model_returned(data):
    accs = {"linear_probe": 0.80, "prototype": 0.7, "mlp_head": 0.7, "partial_ft": 0.6, "scratch": 0.97}
    plan, model = ScriptedPlanner(accs, rungs=list(LADDER)).run(data)
    assert plan.pick == "scratch" and plan.negative_transfer
    assert model.startswith("model:scratch:") and model.endswith(":200")  # trained again on all the data
    assert any("NEGATIVE TRANSFER" in d for d in plan.decisions)


def test_a_costlier_rung_that_wins_by_a_few_lucky_examples_is_not_picked(data):
    # 2 more right out of 40: above the margin, but a paired z of sqrt(2) < ... only with z=2
    accs = {"linear_probe": 0.80, "prototype": 0.5, "mlp_head": 0.5, "partial_ft": 0.85, "full_ft": 0.5}
    plan, _ = ScriptedPlanner(accs, z=2.0).run(data)
    assert plan.pick == "linear_probe" and any("stop climbing" in d for d in plan.decisions)
    plan, _ = ScriptedPlanner(accs, z=1.0).run(data)
    assert plan.pick == "partial_ft"


def test_a_cheaper_rung_wins_a_tie_within_the_margin(data):
    accs = {"linear_probe": 0.800, "prototype": 0.5, "mlp_head": 0.5, "partial_ft": 0.815,
            ("full_ft", 0.25): 0.6, ("partial_ft", 0.5): 0.804}
    plan, _ = ScriptedPlanner(accs, margin=0.01).run(data)
    assert plan.pick == "linear_probe"


def test_a_rung_whose_estimated_cost_exceeds_the_budget_left_is_not_run(data):
    accs = {"linear_probe": 0.6, "prototype": 0.5, "mlp_head": 0.5, ("partial_ft", 0.25): 0.7,
            ("partial_ft", 0.5): 0.8, ("full_ft", 0.25): 0.65}
    p = ScriptedPlanner(accs, seconds={"partial_ft": 30.0}, budget=16.0)  # 7.5 s at 0.25, 7.5 s more to 0.5
    plan, _ = p.run(data)
    assert ("partial_ft", 0.25, 160) in p.calls and ("partial_ft", 0.5, 160) not in p.calls
    assert any(d.startswith("partial_ft at budget 0.5 (continued from 0.25): not run: its estimated 7.5 s exceed")
               for d in plan.decisions), plan.decisions
    assert p.clock <= 16.0 - 4.0  # the caller keeps CALLER_SECONDS


def test_a_first_costly_run_that_cannot_end_in_time_is_stopped_by_its_step_guard(data):
    accs = {"linear_probe": 0.6, "prototype": 0.5, "mlp_head": 0.5, "partial_ft": 0.7, "full_ft": 0.8}
    p = ScriptedPlanner(accs, seconds={"partial_ft": 400.0}, budget=25.0)  # 100 s at 0.25, no evidence before
    plan, _ = p.run(data)
    assert ("partial_ft", 0.25, 160) in p.calls and not [t for t in plan.trials if t.rung == "partial_ft"]
    assert any(d.startswith("partial_ft at budget 0.25: stopped after 3 of 100 steps") for d in plan.decisions)
    # full fine-tuning steps at least as slowly as partial fine-tuning: 1 s a step x 20 steps (1 epoch of 160
    # texts, batch 8) rules it out
    assert ("full_ft", 0.25, 160) not in p.calls
    assert any(d.startswith("full_ft at budget 0.25: not run: its estimated") for d in plan.decisions)
    assert p.clock <= 25.0 and plan.seconds <= 25.0


def test_the_budget_is_never_overrun_whatever_the_rungs_cost(data):
    accs = {"linear_probe": 0.6, "prototype": 0.55, "mlp_head": 0.62, "partial_ft": 0.7,
            ("full_ft", 0.25): 0.75, ("full_ft", 0.5): 0.85, ("full_ft", 1.0): 0.9}
    for budget in (3.0, 10.0, 30.0, 100.0):
        for full in (1.0, 10.0, 60.0, 400.0):
            for cheap in (0.05, 0.5):
                secs = {"linear_probe": cheap, "prototype": cheap, "mlp_head": 3 * cheap, "full_ft": full}
                p = ScriptedPlanner(accs, seconds=secs, budget=budget)
                plan, model = p.run(data)
                assert p.clock <= budget, (budget, full, cheap, plan.format())
                assert model.startswith(f"model:{plan.pick}:")
                assert not any(" 0 s " in d or "~0 s" in d for d in plan.decisions), plan.decisions


def test_a_spent_budget_is_named_as_such(data):
    p = ScriptedPlanner({"linear_probe": 0.7, "prototype": 0.6}, rungs=["linear_probe", "prototype", "full_ft"],
                        seconds={"linear_probe": 3.0}, budget=2.0)  # the first fold alone overruns
    plan, model = p.run(data)
    assert model == "model:linear_probe:1.0:160" and plan.pick == "linear_probe"
    assert [c[0] for c in p.calls] == ["linear_probe"]
    spent = [d for d in plan.decisions if d.endswith("the budget is spent (3 s of 2 s used)")]
    assert len(spent) >= 3, plan.decisions  # more folds, prototype, full_ft, the refit
    assert not any("estimated" in d for d in plan.decisions)


def test_cheap_rungs_are_cross_validated_on_the_same_folds_and_compared_over_every_example(data):
    accs = {"linear_probe": 0.70, "prototype": 0.5, "mlp_head": 0.75}
    p = ScriptedPlanner(accs, z=2.0, rungs=["linear_probe", "prototype", "mlp_head"])
    plan, model = p.run(data)
    assert [c for c in p.calls if c[0] == "linear_probe"] == [("linear_probe", 1.0, 160)] * 5  # one fit a fold
    assert p.calls[-1] == ("mlp_head", 1.0, 200)  # only the pick is trained again, on all the data
    cv = {t.rung: t for t in plan.trials}
    assert all(t.folds == 5 and sorted(t.index.tolist()) == list(range(200)) for t in cv.values())
    assert [t.index.tolist() for t in cv.values()].count(cv["linear_probe"].index.tolist()) == 3  # same folds
    # 2 more right in each fold of 40: z = 1.4 on one fold, 3.2 over all 200 examples
    assert plan.pick == "mlp_head" and model == "model:mlp_head:1.0:200"


def test_stratified_folds_partition_every_class_and_never_hold_out_a_singleton():
    labels = ["a"] * 23 + ["b"] * 12 + ["c"]
    folds = stratified_folds(labels, 5, seed=7)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(35))  # every example once; the single "c" never
    for tr, h in folds:
        assert sorted(tr.tolist() + h.tolist()) == list(range(36))
        assert {labels[i] for i in tr} == {"a", "b", "c"}
        assert abs(sum(labels[i] == "a" for i in h) - 23 / 5) < 1 and abs(sum(labels[i] == "b" for i in h) - 12 / 5) < 1
    assert [len(h) for _, h in folds] == [7, 7, 7, 7, 7]


def test_each_modality_gets_its_own_scratch_rung_and_text_skips_partial_fine_tuning():
    from headstart.selection.planner import ladder_for
    assert ladder_for("text") == ["linear_probe", "prototype", "zero_shot", "mlp_head", "contrastive", "full_ft", "tfidf"]
    assert ladder_for("image") == ["linear_probe", "prototype", "mlp_head", "partial_ft", "full_ft", "scratch"]
    assert ladder_for("timeseries") == ["linear_probe", "prototype", "mlp_head", "partial_ft", "full_ft", "rocket"]


def test_rocket_beating_every_transfer_rung_on_time_series_is_negative_transfer(data):
    accs = {"linear_probe": 0.70, "prototype": 0.65, "mlp_head": 0.68, "rocket": 0.90}
    plan, _ = ScriptedPlanner(accs, rungs=["linear_probe", "prototype", "mlp_head", "rocket"]).run(data)
    assert plan.pick == "rocket" and plan.negative_transfer


def test_tfidf_beating_every_transfer_rung_on_text_is_negative_transfer(data):
    accs = {"linear_probe": 0.70, "prototype": 0.65, "mlp_head": 0.68, "full_ft": 0.72, "tfidf": 0.90}
    plan, model = ScriptedPlanner(accs, rungs=["linear_probe", "prototype", "mlp_head", "full_ft", "tfidf"]).run(data)
    assert plan.pick == "tfidf" and plan.negative_transfer
    assert model == "model:tfidf:1.0:200"  # a cheap rung: refitted on all the data
    assert any("NEGATIVE TRANSFER" in d for d in plan.decisions)


def test_plan_runs_the_tfidf_rung_for_text_and_bundles_it(text_data, tmp_path):
    planner = headstart.Planner(headstart.Headstart(backbone="tiny:bert", run={"out": tmp_path / "b"},
                                                    runtime={"cache_dir": tmp_path / "c"}, verbose=False),
                                rungs=["prototype", "tfidf"], verbose=False)
    est = planner.fit(text_data[0], test=text_data[1]).best_estimator_
    assert {t.rung for t in est.plan_.trials} == {"prototype", "tfidf"}
    assert est.plan_.negative_transfer == (est.plan_.pick == "tfidf")
    loaded = headstart.load(tmp_path / "b")
    assert loaded.predict(text_data[1]).tolist() == est.metrics_["test"]["predictions"]


def test_budget_strings():
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90 and parse_budget("1h") == 3600
    assert parse_budget(None) is None and parse_budget(45) == 45.0
    with pytest.raises(ValueError, match="budget"):
        parse_budget("soon")


def test_unknown_rungs_are_refused():
    with pytest.raises(ValueError, match="unknown rung"):
        Ladder({}, rungs=["linear_probe", "magic"])


def test_planner_meta_estimator_fits_the_picked_rung_and_keeps_the_ladder_in_the_bundle(image_data, tmp_path):
    train, test = image_data
    base = headstart.Headstart(backbone="tiny:cnn", run={"out": tmp_path / "b"}, runtime={"cache_dir": tmp_path / "c"},
                               verbose=False)
    planner = headstart.Planner(base, rungs=["linear_probe", "prototype"], verbose=False).fit(train, test=test)
    est = planner.best_estimator_
    assert planner.plan_ is est.plan_ and not hasattr(base, "model_")  # the estimator given stays unfitted
    assert est.plan_.pick in ("linear_probe", "prototype")
    assert {t.rung for t in est.plan_.trials} == {"linear_probe", "prototype"}
    assert est.metrics_["test"]["accuracy"] >= 0.5  # 3 colour classes: chance is 1/3
    loaded = headstart.load(tmp_path / "b")
    assert loaded.meta_["plan"]["pick"] == est.plan_.pick
    assert loaded.predict(test).tolist() == est.metrics_["test"]["predictions"]
    assert "planner" in (tmp_path / "b" / "README.md").read_text()


def test_the_costly_pick_is_kept_as_trained_when_training_it_again_would_overrun_the_budget(data):
    accs = {"linear_probe": 0.70, "prototype": 0.6, "mlp_head": 0.6, "partial_ft": 0.8, "full_ft": 0.9}
    p = ScriptedPlanner(accs, seconds={"full_ft": 100.0}, budget=70.0)  # 25 s to 0.25, 25 s more to 0.5
    plan, model = p.run(data)
    assert plan.pick == "full_ft" and plan.pick_fidelity == 0.5 and model == "model:full_ft:0.5:160"
    assert any(d.startswith("full_ft kept as trained on 160 examples, not trained again on all 200: its "
                            "estimated 62 s exceed") for d in plan.decisions), plan.decisions
    assert p.clock <= 70.0
    plan, model = ScriptedPlanner(accs, refit=False).run(data)
    assert model == f"model:full_ft:{plan.pick_fidelity}:160"


def test_a_costly_rung_that_could_not_be_shown_better_is_not_run(data):
    accs = {"linear_probe": 0.80, "prototype": 1.0, "mlp_head": 0.7, "partial_ft": 1.0, "full_ft": 1.0}
    p = ScriptedPlanner(accs)
    plan, model = p.run(data)
    assert not [c for c in p.calls if c[0] in ("partial_ft", "full_ft")]  # 40/40 cannot be beaten
    assert plan.pick == "prototype" and any("not run" in d for d in plan.decisions)


def test_the_only_costly_rung_skips_halving_and_trains_once_at_full_budget_on_all_the_data(data):
    accs = {"linear_probe": 0.70, "prototype": 0.6, "mlp_head": 0.6, ("full_ft", 0.25): 0.80, ("full_ft", 0.5): 0.9}
    text_ladder = ["linear_probe", "prototype", "mlp_head", "full_ft"]  # one costly rung: nothing to halve
    p = ScriptedPlanner(accs, rungs=text_ladder)
    plan, model = p.run(data)
    assert [c for c in p.calls if c[0] == "full_ft"] == [("full_ft", 0.25, 160), ("full_ft", 1.0, 200)]
    assert plan.pick == "full_ft" and plan.pick_fidelity == 1.0 and model == "model:full_ft:1.0:200"
    assert any("no halving" in d for d in plan.decisions)
    # when the full budget on all the data would not fit, it halves as before and keeps the budget
    p = ScriptedPlanner(accs, rungs=text_ladder, seconds={"full_ft": 100.0}, budget=70.0)
    plan, model = p.run(data)
    assert ("full_ft", 0.5, 160) in p.calls and ("full_ft", 1.0, 200) not in p.calls and p.clock <= 70.0
    assert not any("no halving" in d for d in plan.decisions)


class ScriptedAdapting(ScriptedPlanner):
    """ScriptedPlanner with scripted target information maximisation per rung (``ims``; the
    source-only models by their rung too): what the label-free pick sees."""

    def __init__(self, accs, ims, **kw):
        super().__init__(accs, **kw)
        self.ims = ims

    def _target_im(self, est):
        return self.ims[est.split(":")[1]]


@pytest.fixture
def target():
    return headstart.data.sources.from_sequences([f"target {i}" for i in range(60)], None, "text")


CHEAP = ["linear_probe", "prototype", "mlp_head"]


def test_the_adaptation_rung_with_the_best_label_free_score_is_picked_and_the_criterion_named(data, target):
    accs = {"linear_probe": 0.8, "prototype": 0.6, "mlp_head": 0.7, "feature_align": 0.3, "feature_align_st": 0.3}
    p = ScriptedAdapting(accs, {"linear_probe": -0.2, "feature_align": -0.5, "feature_align_st": -0.6},
                         rungs=CHEAP + ["feature_align", "feature_align_st"])
    plan, model = p.run(data, target)
    # source accuracy says nothing of a model carrying the target's statistics: the target IM decides
    assert plan.pick == "feature_align_st" and model == "model:feature_align_st:1.0:200"
    assert plan.source_im == -0.2 and plan.n_target == 60
    assert {t.rung: t.target_im for t in plan.trials if t.target_im is not None} == {
        "feature_align": -0.5, "feature_align_st": -0.6}
    assert "information maximisation" in plan.criterion and "no target label" in plan.criterion
    assert any(d.startswith("feature_align_st picked without target labels") for d in plan.decisions)
    text = plan.format()
    assert "criterion: information maximisation" in text and "target IM -0.600" in text


def test_source_only_is_returned_when_no_adaptation_rung_beats_it_by_the_label_free_criterion(data, target):
    p = ScriptedAdapting({"linear_probe": 0.8, "prototype": 0.6, "mlp_head": 0.7}, {
        "linear_probe": -0.9, "feature_align": -0.5, "dann": -0.8}, rungs=CHEAP + ["feature_align", "dann"])
    plan, model = p.run(data, target)
    assert plan.pick == "linear_probe" and model == "model:linear_probe:1.0:200"
    assert any("no adaptation rung beat the source-only pick by the label-free criterion" in d
               for d in plan.decisions)
    assert [c[:2] for c in p.calls if c[0] in ("feature_align", "dann")] == [("feature_align", 1.0), ("dann", 1.0)]


def test_a_fine_tune_that_loses_source_accuracy_is_no_candidate_however_confident(data, target):
    accs = {"linear_probe": 0.8, "prototype": 0.6, "mlp_head": 0.7, "dann": 0.5, "coral": 0.79}
    p = ScriptedAdapting(accs, {"linear_probe": -0.2, "dann": -1.5, "coral": -0.4}, rungs=CHEAP + ["dann", "coral"])
    plan, model = p.run(data, target)
    assert plan.pick == "coral" and model == "model:coral:1.0:200"
    assert any(d.startswith("dann: held-out source accuracy 50.0% is more than 5 points below") for d in plan.decisions)


def test_adaptation_rungs_run_at_the_budget_a_fine_tune_reached_and_within_the_planners_budget(data, target):
    accs = {"linear_probe": 0.6, "prototype": 0.5, "mlp_head": 0.5, ("full_ft", 0.25): 0.8, ("full_ft", 0.5): 0.8,
            "dann": 0.8, "mmd": 0.8}
    p = ScriptedAdapting(accs, {"full_ft": -0.1, "dann": -0.3, "mmd": -0.4},
                         rungs=CHEAP + ["full_ft", "dann", "mmd"], seconds={"dann": 80.0, "mmd": 80.0}, budget=60.0)
    plan, model = p.run(data, target)
    assert ("dann", 0.5, 160) in p.calls  # full_ft stopped at 0.5 (doubling did not pay)
    # mmd's estimate is full_ft's faster pace (a lower bound): its step guard stops it in time
    assert any(d.startswith("mmd at budget 0.5: stopped after 3 of 100 steps") for d in plan.decisions)
    assert plan.pick == "dann" and p.clock <= 60.0
    assert model == "model:dann:0.5:160"  # no time left to train it again on all the data


def test_adaptation_rungs_need_target_data(data):
    with pytest.raises(ValueError, match="adapt to unlabeled target data"):
        ScriptedAdapting({}, {}, rungs=["linear_probe", "dann"]).run(data)


# -- zero-shot and contrastive rungs ------------------------------------------------------------
def test_the_default_text_ladder_says_why_zero_shot_and_contrastive_do_not_apply(data):
    """200 texts of 2 classes: 100 per class is above contrastive tuning's 64; classes named 0/1
    give zero-shot no words to prompt with."""
    coded = headstart.data.sources.from_sequences(data.items, ["0", "1"] * 100, "text")
    plan, _ = ScriptedPlanner({"linear_probe": 0.8}, rungs=None).run(coded)
    assert {t.rung for t in plan.trials}.isdisjoint({"zero_shot", "contrastive"})
    assert any(d.startswith("zero_shot: not run — the class names ['0', '1'] are not words") for d in plan.decisions)
    assert any(d.startswith("contrastive: not run — 100 examples per class") for d in plan.decisions)
    plan, _ = ScriptedPlanner({"linear_probe": 0.8}, rungs=None).run(data)  # classes a/b: words
    assert "zero_shot" in {t.rung for t in plan.trials}


def test_a_zero_shot_rung_that_clearly_beats_the_probe_is_picked_after_cross_validation(data):
    p = ScriptedPlanner({"linear_probe": 0.70, "prototype": 0.65, "zero_shot": 0.85},
                        rungs=["linear_probe", "prototype", "zero_shot"])
    plan, model = p.run(data)
    zs = plan.best("zero_shot")
    assert zs.folds == 5 and len(zs.correct) == 200  # cross-validated like the other cheap rungs
    assert plan.pick == "zero_shot" and model == "model:zero_shot:1.0:200" and not plan.negative_transfer


def test_a_losing_contrastive_rung_does_not_stop_the_climb_nor_is_skipped_by_it(data):
    p = ScriptedPlanner({"linear_probe": 0.80, "contrastive": 0.70, "full_ft": 0.95},
                        rungs=["linear_probe", "contrastive", "full_ft"])
    plan, _ = p.run(data)
    assert ("full_ft", 0.25, 160) in p.calls and plan.pick == "full_ft"
    assert any("beside the climb, so the climb goes on" in d for d in plan.decisions)
    p = ScriptedPlanner({"linear_probe": 0.80, "full_ft": 0.70, "contrastive": 0.95},
                        rungs=["linear_probe", "full_ft", "contrastive"])
    plan, _ = p.run(data)
    assert ("contrastive", 0.25, 160) in p.calls and plan.pick == "contrastive"


def test_contrastive_is_costed_in_exact_optimizer_steps_and_continued_runs_add_only_the_difference():
    from headstart import recipes
    from headstart.selection.planner import _examples, planned_steps

    params = {**recipes.contrastive(1.0), "runtime": {}}
    assert planned_steps(params, 500) == 40 and _examples(params, 500) == 640  # 40 steps of 16 texts
    assert _examples({**recipes.fine_tuning("text"), "runtime": {}}, 500) == 5 * 63 * 8  # 5 epochs, batch 8
    sp = Ladder({"seed": 0})._params("contrastive", "text", 0.5, start=0.25)["strategy_params"]
    assert (sp["steps"], sp["max_steps"]) == (10, 10)  # 20 at half budget, 10 of them already run


def test_the_zero_shot_rung_fits_on_the_inputs_alone_with_the_class_names_as_labels(text_data, tmp_path):
    from headstart.data.sources import read_data

    data = read_data(text_data[0])
    params = Ladder({"seed": 0, "backbone": "tiny:bert", "runtime": {"cache_dir": tmp_path}})._params(
        "zero_shot", "text", 1.0)
    est = RUNGS.get("zero_shot").fit(params, data)
    assert sorted(est.classes_) == ["neg", "pos"] and est.meta_["strategy"]["name"] == "zero_shot"
    assert "accuracy" not in est.metrics_["zero_shot"]  # no label reached it: nothing to score with


def test_plan_picks_the_zero_shot_rung_and_bundles_it(text_data, tmp_path):
    planner = headstart.Planner(headstart.Headstart(backbone="tiny:bert", run={"out": tmp_path / "b"},
                                                    runtime={"cache_dir": tmp_path / "c"}, verbose=False),
                                rungs=["zero_shot"], verbose=False)
    est = planner.fit(text_data[0], test=text_data[1]).best_estimator_
    assert est.plan_.pick == "zero_shot" and est.meta_["strategy"]["name"] == "zero_shot"
    loaded = headstart.load(tmp_path / "b")
    assert loaded.predict(text_data[1]).tolist() == est.metrics_["test"]["predictions"]
    import json

    assert json.loads((tmp_path / "b" / "headstart.json").read_text())["plan"]["pick"] == "zero_shot"


def test_the_zero_shot_rung_classifies_images_with_a_dual_encoder_backbone(image_data, tmp_path):
    from headstart.data.sources import read_folder
    from headstart.testing.clip import tiny_clip_dir

    params = Ladder({"seed": 0, "backbone": f"hf:{tiny_clip_dir(tmp_path / 'clip')}",
                     "runtime": {"cache_dir": tmp_path / "c"}})._params("zero_shot", "image", 1.0)
    est = RUNGS.get("zero_shot").fit(params, read_folder(image_data[1]))
    assert est.modality_ == "image" and sorted(est.classes_) == ["blue", "green", "red"]
    assert len(est.predict(read_folder(image_data[0]))) == 36


def _shared_and_whole(data, backbone, rungs, cache):
    """The ladder on ``data`` twice, the same folds (2: fast) and disk cache: the rungs on cached
    features fitted on the shared backbone's features, then each fold a whole ``Headstart.fit``."""
    out = []
    for share in (True, False):
        ladder = Ladder({"seed": 0, "backbone": backbone, "runtime": {"cache_dir": cache}}, rungs=rungs, folds=2,
                        log=None)
        ladder.share = share
        out.append(ladder.run(data))
    return out


def test_cross_validation_on_the_shared_features_predicts_as_whole_fits_do(text_data, tmp_path):
    from headstart.data.sources import read_data

    data, test = read_data(text_data[0]), read_data(text_data[1])
    rungs = ["linear_probe", "zero_shot"]  # the probe with the class names' prior; zero-shot on the same features
    (shared, est_s), (whole, est_w) = _shared_and_whole(data, "fixed:bert", rungs, tmp_path / "c")
    for rung in rungs:
        a, b = shared.best(rung), whole.best(rung)
        assert a.folds == b.folds == 2 and np.array_equal(a.index, b.index)
        assert np.array_equal(a.correct, b.correct), rung  # every example predicted alike by its fold's model
    assert shared.pick == whole.pick  # and trained again on all the data alike
    np.testing.assert_allclose(est_s.decision_function(test), est_w.decision_function(test), rtol=1e-4, atol=1e-5)


def test_cross_validation_computes_each_example_s_features_once(image_data, tmp_path, counting):
    from headstart.data.sources import read_data

    data = read_data(image_data[0])
    rungs = ["prototype", "mlp_head"]  # the probe: in the test above
    (shared, est), (whole, _) = _shared_and_whole(data, "counting:cnn", rungs, tmp_path / "c")
    assert counting.seen == len(data)  # 2 rungs x 2 folds and the refit: one pass (the whole fits read the disk)
    for rung in rungs:
        assert np.array_equal(shared.best(rung).correct, whole.best(rung).correct), rung
    from headstart.features.cache import FeatureCache

    assert est.reference_ is not None and type(est.cache_) is FeatureCache  # the returned model: as fit's


def test_a_costly_cheap_rung_stops_its_cross_validation_once_it_could_not_become_the_choice(data):
    # folds of 40: the probe is wrong on 8 a fold, the MLP head on 20; after 2 folds (24 behind) even right
    # on the 24 examples the probe gets wrong in the 3 folds left it would only tie
    p = ScriptedPlanner({"linear_probe": 0.80, "prototype": 0.5, "mlp_head": 0.5},
                        rungs=["linear_probe", "prototype", "mlp_head"])
    plan, _ = p.run(data)
    assert [c[0] for c in p.calls].count("mlp_head") == 2
    mlp = plan.best("mlp_head")
    assert mlp.folds == 2 and mlp.out and len(mlp.correct) == 80
    assert any(d.startswith("mlp_head: cross-validation stopped after 2 of 5 folds") for d in plan.decisions)
    assert plan.pick == "linear_probe"
    # prototype folds cost a probe fold (prior 1): it runs every fold, though it cannot win either
    assert plan.best("prototype").folds == 5


class EveryFold(ScriptedPlanner):
    """Every cheap rung cross-validated on every fold (no race)."""

    def _out_of_race(self, *args, **kwargs):
        return False


def test_stopping_a_rung_out_of_the_race_never_changes_the_pick(data):
    rungs = ["linear_probe", "prototype", "mlp_head"]
    for probe in (0.6, 0.7, 0.8):
        for proto in (0.5, 0.65, 0.75):
            for mlp in (0.5, 0.62, 0.7, 0.72, 0.76, 0.8, 0.9):
                accs = {"linear_probe": probe, "prototype": proto, "mlp_head": mlp}
                raced, every = ScriptedPlanner(accs, rungs=rungs), EveryFold(accs, rungs=rungs)
                a, b = raced.run(data)[0], every.run(data)[0]
                assert a.pick == b.pick, (accs, a.format(), b.format())
                assert len(raced.calls) <= len(every.calls)


@pytest.fixture
def few():  # 64 texts, 32 per class: fit's default is contrastive tuning; 5 folds of 12-13, 13 held out
    return headstart.data.sources.from_sequences([f"text {i}" for i in range(64)], ["a", "b"] * 32, "text")


FEW_LADDER = ["linear_probe", "prototype", "mlp_head", "contrastive", "full_ft"]


def test_fit_s_default_rung_wins_a_held_out_tie_and_trains_once_at_full_budget_on_all_the_data(few):
    # contrastive 12/13 held-out examples at a quarter budget, as the probe: the held-out split cannot tell them apart
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.9, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, model = p.run(few)
    assert plan.pick == "contrastive" and plan.pick_fidelity == 1.0 and model == "model:contrastive:1.0:64"
    # no halving: a quarter budget on the fit split, then that run continued to full budget on all 64
    assert [c for c in p.calls if c[0] == "contrastive"] == [("contrastive", 0.25, 51), ("contrastive", 1.0, 64)]
    assert p.starts == [("contrastive", 0.25, 1.0)]
    assert plan.decisions[-1].startswith("contrastive: its budget-0.25 run continued on all 64 examples up to budget 1")
    assert any(d.startswith("contrastive: 92.3% at budget 0.25 ties linear_probe (92.3% on the same 13 held-out")
               and "fit's default for 64 texts (32 per class)" in d
               and d.endswith("its run goes on to full budget on all 64 examples") for d in plan.decisions), plan.decisions
    assert any(d.endswith("contrastive kept because it is fit's default for 64 texts (32 per class)")
               for d in plan.decisions), plan.decisions


def test_a_default_rung_clearly_beaten_on_the_held_out_split_is_not_picked(few):
    # contrastive 8/13, the probe 12/13: 4 examples only the probe gets right, none the other way, paired z 2.00
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.6, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, model = p.run(few)
    assert plan.pick == "linear_probe" and model == "model:linear_probe:1.0:64"
    assert ("contrastive", 1.0, 64) not in p.calls and not any("kept because" in d for d in plan.decisions)
    assert any(d.startswith("contrastive: 61.5% at budget 0.25 is clearly beaten by linear_probe (92.3% on the same "
                            "13 held-out examples, paired z of linear_probe 2.00 >= 1.96): overturned")
               for d in plan.decisions), plan.decisions
    assert any(d.endswith("linear_probe overturns contrastive, fit's default for 64 texts (32 per class)")
               for d in plan.decisions), plan.decisions


def test_fit_s_default_is_kept_when_the_cheaper_rung_beats_it_only_at_a_paired_z_under_1_96(few):
    # contrastive 10/13, the probe 12/13: 2 examples only the probe gets right, paired z 1.41 — past the
    # ladder's z of 1 (the old bar), short of the two-sided 5% level that overturning fit's default asks
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.75, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, model = p.run(few)
    assert plan.pick == "contrastive" and model == "model:contrastive:1.0:64"
    assert any(d.startswith("contrastive: 76.9% at budget 0.25 is not clearly beaten by linear_probe (92.3% on the "
                            "same 13 held-out examples; paired z of linear_probe 1.41 < 1.96, the bar to overturn it)")
               for d in plan.decisions), plan.decisions
    assert any(d.endswith("contrastive kept because it is fit's default for 64 texts (32 per class)")
               for d in plan.decisions), plan.decisions
    old, _ = ScriptedPlanner(accs, rungs=FEW_LADDER, z_default=1.0).run(few)  # the ladder's z alone overturns it
    assert old.pick == "linear_probe"


def test_strong_paired_evidence_overturns_fit_s_default(few):
    # contrastive 5/13, the probe 12/13: 7 examples only the probe gets right, paired z 2.65 >= 1.96
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.4, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, model = p.run(few)
    assert plan.pick == "linear_probe" and model == "model:linear_probe:1.0:64"
    assert ("contrastive", 1.0, 64) not in p.calls
    assert any("paired z of linear_probe 2.65 >= 1.96): overturned" in d for d in plan.decisions), plan.decisions


def test_a_tie_goes_to_the_cheaper_rung_when_the_costly_one_is_not_fit_s_default(few):
    # full fine-tuning ties the probe, but fit's default here is contrastive tuning (clearly beaten)
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.6, "full_ft": 0.9}
    plan, _ = ScriptedPlanner(accs, rungs=FEW_LADDER).run(few)
    assert plan.pick == "linear_probe"
    assert any(d.startswith("full_ft: 92.3% at budget 0.25 does not beat linear_probe") for d in plan.decisions)


def test_a_tied_default_rung_is_kept_at_its_budget_when_the_full_budget_would_not_fit(few):
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.9, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER, seconds={"contrastive": 40.0}, budget=30.0)
    plan, model = p.run(few)
    assert plan.pick == "contrastive" and ("contrastive", 1.0, 64) not in p.calls and p.clock <= 30.0
    assert not any("goes on to full budget" in d for d in plan.decisions)


def test_a_text_fine_tune_at_a_fraction_of_its_budget_costs_at_most_that_fraction_of_its_epochs():
    from headstart import recipes

    epochs = [recipes.fine_tuning("text", f)["strategy_params"]["epochs"] for f in (0.25, 0.5, 1.0)]
    assert epochs == [1, 2, 5]
    sp = Ladder({"seed": 0})._params("full_ft", "text", 1.0, start=0.5)["strategy_params"]
    assert sp["epochs"] == 3  # continued from half budget: only the 3 epochs left


def test_a_stopped_continuation_of_a_tied_default_returns_its_quarter_budget_model(few):
    class SlowOnAll(ScriptedPlanner):  # the continuation on all 64 overruns: its step guard stops it
        def _run(self, rung, fidelity, fit, val, start=None, deadline=math.inf):
            if start is not None and len(fit) == 64:
                raise OutOfBudget(3, 30, 1.0, 27.0)
            return super()._run(rung, fidelity, fit, val, start, deadline)

    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.9, "full_ft": 0.5}
    plan, model = SlowOnAll(accs, rungs=FEW_LADDER).run(few)
    assert plan.pick == "contrastive" and model == "model:contrastive:0.25:51"
    assert plan.decisions[-1].startswith("contrastive kept as trained on 51 examples: training it again on all 64 "
                                         "examples stopped after 3 of 30 steps")


def test_a_default_kept_against_the_pick_after_another_rung_overturned_it_in_the_climb_goes_on_to_full_budget(few):
    class HeldOutMLP(ScriptedPlanner):  # the MLP head: 12 of the 13 held-out examples, none elsewhere
        def _run(self, rung, fidelity, fit, val, start=None, deadline=math.inf):
            model, correct, secs = super()._run(rung, fidelity, fit, val, start, deadline)
            if rung == "mlp_head":
                first = sum(c[0] == "mlp_head" for c in self.calls) == 1  # the first fold is the held-out one
                correct = np.arange(len(val)) < (12 if first else 0)
            return model, correct, secs

    # held out: the MLP head 12/13 overturns contrastive's 6/13 (paired z 2.45), but the pick, the probe
    # (cross-validated), has 9/13 (z 1.73 < 1.96): contrastive is kept, so its run goes on to full budget
    accs = {"linear_probe": 0.7, "prototype": 0.5, "mlp_head": 0.0, "contrastive": 0.45, "full_ft": 0.3}
    p = HeldOutMLP(accs, rungs=FEW_LADDER)
    plan, model = p.run(few)
    assert any("clearly beaten by mlp_head" in d for d in plan.decisions), plan.decisions
    assert plan.pick == "contrastive" and model == "model:contrastive:1.0:64"
    assert p.starts == [("contrastive", 0.25, 1.0)]
    assert any(d.endswith("kept because it is fit's default for 64 texts (32 per class); its run goes on to full "
                          "budget on all 64 examples") for d in plan.decisions), plan.decisions


@pytest.mark.parametrize("n,expected", [(16, None), (63, None), (64, "contrastive"), (500, "full_ft")])
def test_fit_default_is_the_contrastive_rung_only_where_fit_tunes_for_the_rungs_budget(n, expected):
    """Below 64 texts fit tunes for fewer steps than the rung's 40 (recipes.contrastive_steps): not its default."""
    from headstart.data._base import LabeledData
    from headstart.selection.planner import fit_default

    data = LabeledData([f"text {i}" for i in range(n)], ["a", "b"] * (n // 2) + ["a"] * (n % 2), "text")
    got = fit_default(data)
    assert (got[0] if got else None) == expected


class Unnested(ScriptedPlanner):
    """Each rung right on its own random ``round(acc * n)`` examples of a fold (fixed by rung, budget and
    fold, not by the order of the runs), so that paired comparisons have discordant examples both ways."""

    def _run(self, rung, fidelity, fit, val, start=None, deadline=math.inf):
        model, correct, secs = super()._run(rung, fidelity, fit, val, start, deadline)
        if correct is not None:
            fold = int(val.items[0].split()[-1])
            rng = np.random.default_rng([sum(map(ord, rung)), int(100 * fidelity), fold])
            correct = rng.permutation(len(val)) < int(correct.sum())
        return model, correct, secs


class NoDefaultRace(Unnested):
    """Every cheap rung cross-validated on every fold, whatever fit's default scored (no hold)."""

    def _default_holds(self, *args, **kwargs):
        return False


def test_holding_cheap_folds_while_fit_s_default_stands_never_changes_the_pick(few):
    held = 0
    for probe in (0.55, 0.7, 0.85):
        for mlp in (0.5, 0.75, 0.9):
            for contrastive in (0.3, 0.6, 0.8, 0.95):
                for full_ft in (0.5, 0.8, 1.0):
                    accs = {"linear_probe": probe, "prototype": 0.6, "mlp_head": mlp, "contrastive": contrastive,
                            "full_ft": full_ft}
                    raced, every = Unnested(accs, rungs=FEW_LADDER), NoDefaultRace(accs, rungs=FEW_LADDER)
                    (a, ma), (b, mb) = raced.run(few), every.run(few)
                    assert (a.pick, ma) == (b.pick, mb), (accs, a.format(), b.format())
                    assert len(raced.calls) <= len(every.calls)
                    held += len(raced.calls) < len(every.calls)
    assert held >= 10  # the hold saved folds in many of the 108 cases, not in none


def test_cheap_rungs_stop_after_the_held_out_fold_when_fit_s_default_stands(few):
    # contrastive 12/13 at a quarter budget; the probe 10/13 cannot overturn it there (paired z < 1.96)
    accs = {"linear_probe": 0.75, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.9, "full_ft": 0.5}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, _ = p.run(few)
    assert plan.pick == "contrastive"
    names = [c[0] for c in p.calls]
    assert names[:4] == ["linear_probe", "prototype", "mlp_head", "contrastive"]  # the default right after fold 1
    assert names.count("linear_probe") == 1 and plan.best("linear_probe").folds == 1
    assert any(d.startswith("linear_probe: cross-validation held after 1 of 5 folds: on the 13 held-out examples")
               and "does not overturn contrastive at budget 0.25" in d for d in plan.decisions), plan.decisions
    assert p.calls.count(("contrastive", 0.25, 51)) == 1  # the climb took that run, it did not run it again


def test_held_cheap_folds_run_before_the_pick_when_another_rung_overturns_the_default(few):
    # the probe 9/13 does not overturn contrastive's 6/13 (z 1.73) and stops; full fine-tuning 13/13 does
    accs = {"linear_probe": 0.7, "prototype": 0.5, "mlp_head": 0.5, "contrastive": 0.45, "full_ft": 1.0}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, _ = p.run(few)
    assert plan.pick == "full_ft"
    assert [c[0] for c in p.calls].count("linear_probe") == 5 and plan.best("linear_probe").folds == 5
    assert any(d == "linear_probe: cross-validation goes on: full_ft overturns contrastive, fit's default for 64 "
               "texts (32 per class)" for d in plan.decisions), plan.decisions


def test_a_rung_that_could_not_overturn_a_kept_default_even_if_perfect_is_not_run(few):
    # contrastive ties the probe at 12/13: 13/13 would be a paired z of 1 over it, short of 1.96
    accs = {"linear_probe": 0.9, "prototype": 0.6, "mlp_head": 0.6, "contrastive": 0.9, "full_ft": 1.0}
    p = ScriptedPlanner(accs, rungs=FEW_LADDER)
    plan, _ = p.run(few)
    assert plan.pick == "contrastive" and not any(c[0] == "full_ft" for c in p.calls)
    assert any(d.startswith("full_ft: not run — even 100% on 13 held-out examples would not overturn contrastive "
                            "(92.3% on them at budget 0.25)") for d in plan.decisions), plan.decisions


def test_a_costly_rung_not_clearly_better_than_the_cheap_choice_names_the_default_weighed_after_it(few):
    class Discordant(ScriptedPlanner):  # full fine-tuning: 10/13 held out, 2 the probe misses, 1 it gets
        def _run(self, rung, fidelity, fit, val, start=None, deadline=math.inf):
            model, correct, secs = super()._run(rung, fidelity, fit, val, start, deadline)
            if rung == "full_ft":
                correct = np.isin(np.arange(len(val)), [0, 1, 2, 3, 4, 5, 6, 7, 9, 10])
            return model, correct, secs

    # the probe 9/13 (the first 9), contrastive the same 9 (a tie: kept as fit's default); full_ft 10/13 with
    # 3 discordant examples (paired z 0.58 < 1): not clearly better than the probe, and not what is returned
    accs = {"linear_probe": 0.7, "prototype": 0.5, "mlp_head": 0.5, "contrastive": 0.7}
    plan, _ = Discordant(accs, rungs=FEW_LADDER).run(few)
    assert plan.pick == "contrastive"
    assert ("full_ft (76.9%) is not clearly better than linear_probe (69.2%) on the same 13 held-out examples: "
            "linear_probe, the cheaper, stays ahead of it (then weighed against contrastive, fit's default for 64 "
            "texts (32 per class))") in plan.decisions, plan.decisions
