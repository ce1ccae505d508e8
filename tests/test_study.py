"""``harness study``: method entries, the sign-flip test and MDE by hand, the comparison on constructed
predictions, and a real study on the tiny model that is interrupted between runs and resumed."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.errors import HarnessError
from harness.io import write_jsonl
from harness.results.store import ResultRow, ResultsStore, RunRecord
from harness.study import Study, StudyConfig, parse_methods, report, run_study
from harness.study.analysis import compare
from harness.study.stats import minimum_detectable_effect, sign_flip_test


def test_method_entries_carry_options_and_labels():
    entries = parse_methods("base, dpo,mmedpo[ablation=no-visual,noise=global],mmedpo[judges=a,b]")
    assert [e.label for e in entries] == ["base", "dpo", "mmedpo[ablation=no-visual,noise=global]",
                                          "mmedpo[judges=a,b]"]
    assert entries[0].is_base and not entries[1].is_base
    assert dict(entries[2].options) == {"ablation": "no-visual", "noise": "global"}
    assert dict(entries[3].options) == {"judges": "a,b"}  # a piece without '=' continues the value
    for bad, message in [("dpo,dpo", "twice"), ("mmedpo[ablation=x", "unbalanced"), ("base[beta=1]", "no options"),
                         ("", "names no method")]:
        with pytest.raises(HarnessError, match=message):
            parse_methods(bad)


def test_sign_flip_p_matches_the_enumeration_by_hand():
    # d = (1, 2, -0.5, 3): sum 5.5; of the 16 sign patterns only (+,+,-,+), (+,+,+,+) and their negatives
    # reach |sum| >= 5.5 (5.5 and 6.5), so p = 4/16.
    assert sign_flip_test([1, 2, -0.5, 3]) == pytest.approx(4 / 16)
    # all four positive and equal: only the identity and its negative are as extreme -> 2/16
    assert sign_flip_test([1, 1, 1, 1]) == pytest.approx(2 / 16)
    assert sign_flip_test([0, 0, 0]) == 1.0  # no difference at all
    brute = [abs(sum(s * d for s, d in zip(signs, [0.3, -0.1, 0.7, 0.2, 0.4])))
             for signs in itertools.product((1, -1), repeat=5)]
    assert sign_flip_test([0.3, -0.1, 0.7, 0.2, 0.4]) == pytest.approx(sum(b >= 1.5 - 1e-12 for b in brute) / 32)


def test_sign_flip_monte_carlo_agrees_with_the_normal_approximation_for_many_items():
    import numpy as np

    d = np.random.default_rng(0).normal(0.2, 1.0, size=400)
    z = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    from statistics import NormalDist

    p_normal = 2 * (1 - NormalDist().cdf(abs(z)))
    assert sign_flip_test(d, n_perm=20000) == pytest.approx(p_normal, abs=0.01)


def test_minimum_detectable_effect_formula():
    # (z_0.975 + z_0.8) * sd / sqrt(n) = (1.95996 + 0.84162) * 0.5 / 10
    assert minimum_detectable_effect(0.5, 100) == pytest.approx((1.959964 + 0.841621) * 0.05, rel=1e-5)
    assert minimum_detectable_effect(0.5, 400) == pytest.approx(minimum_detectable_effect(0.5, 100) / 2)
    assert math.isnan(minimum_detectable_effect(0.5, 1))


def _fake_run(store, tmp_path, run_id, method, correct):
    """A stored synth_vqa run whose closed answers are right where ``correct`` is 1."""
    folder = tmp_path / run_id
    write_jsonl(folder / "predictions" / "synth_vqa.jsonl", [
        {"id": f"q{i}", "task": "synth_vqa", "answer_type": "closed", "reference": "yes",
         "prediction": "yes" if ok else "no"} for i, ok in enumerate(correct)])
    value = sum(correct) / len(correct)
    store.add_run(RunRecord(model="m", method=method, run_id=run_id, predictions_dir=str(folder)),
                  [ResultRow("synth_vqa", "closed_accuracy", value)])


def test_comparison_on_constructed_items_matches_a_hand_computation(tmp_path):
    store = ResultsStore(tmp_path / "store.sqlite")
    _fake_run(store, tmp_path, "base", None, [1, 0, 0, 1])
    _fake_run(store, tmp_path, "dpo-0", "dpo", [1, 0, 0, 0])
    _fake_run(store, tmp_path, "dpo-1", "dpo", [1, 0, 0, 1])
    _fake_run(store, tmp_path, "new-0", "new", [1, 1, 0, 1])
    _fake_run(store, tmp_path, "new-1", "new", [1, 1, 1, 1])
    runs = [{"label": label, "method": label, "options": {}, "seed": seed, "run_id": f"{label}-{seed}",
             "state": "done"} for label in ("dpo", "new") for seed in (0, 1)]
    study = Study("s", tmp_path / "study", {"settings": {"tasks": ["synth_vqa"]}, "base_run_id": "base",
                                            "methods": ["base", "dpo", "new"], "reference": "dpo", "runs": runs})
    records = {r["method"]: r for r in compare(study, store) if r["metric"] == "closed_accuracy"}
    new = records["new"]
    # seed means 0.75 and 1.0; base 0.5; dpo seeds 0.25 and 0.5
    assert (new["mean"], new["sd"], new["n_seeds"], new["n_items"]) == pytest.approx((0.875, math.sqrt(0.03125), 2, 4))
    assert new["delta_vs_base"] == pytest.approx(0.375)
    assert new["delta_vs_ref"] == pytest.approx(0.875 - 0.375)
    # per item, seed-averaged: new (1, 1, .5, 1) - base (1, 0, 0, 1) = (0, 1, .5, 0): signs of 1 and .5
    # matter; |±1 ± .5| >= 1.5 in half the patterns -> p = 0.5
    assert new["p_vs_base"] == pytest.approx(0.5)
    # vs dpo (1, 0, 0, .5): differences (0, 1, .5, .5) -> sum 2; only all-equal signs reach 2 -> 2/8 of the
    # patterns of the 3 non-zero items = 0.25
    assert new["p_vs_ref"] == pytest.approx(0.25)
    sd = math.sqrt(sum((d - 0.375) ** 2 for d in (0, 1, 0.5, 0)) / 3)
    assert new["mde"] == pytest.approx(minimum_detectable_effect(sd, 4))
    assert records["base"]["delta_vs_base"] is None and records["base"]["sd"] is None
    assert records["dpo"]["delta_vs_ref"] is None and records["dpo"]["delta_vs_base"] == pytest.approx(-0.125)


@pytest.mark.slow
def test_a_study_interrupted_between_runs_resumes_without_redoing_finished_runs(tiny_model_dir, tmp_path,
                                                                                 monkeypatch):
    import harness.pipeline as pipeline
    from harness.pipeline import RunConfig

    real_run, real_pairs = pipeline.run, pipeline.default_text_pairs
    calls, pair_builds = [], []

    def counting_pairs(*args, **kwargs):
        pair_builds.append(args[0].name)
        return real_pairs(*args, **kwargs)

    def interrupt_third(config, *, run_id=None):
        calls.append((config.method, config.train.seed, run_id))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(config, run_id=run_id)

    monkeypatch.setattr(pipeline, "default_text_pairs", counting_pairs)
    monkeypatch.setattr(pipeline, "run", interrupt_third)
    run_config = RunConfig(model="tiny", tasks=("synth_vqa",), train_limit=8, eval_limit=8, store=str(tmp_path / "s.sqlite"),
                           train={"batch_size": 4, "max_steps": 1})
    config = StudyConfig(methods=parse_methods("base,dpo,ipo"), seeds=[0, 1], run=run_config)
    with pytest.raises(KeyboardInterrupt):
        run_study(config, study_id="resume-test", progress=False)
    from harness.study import load_study

    saved = load_study("resume-test").state
    assert [r["state"] for r in saved["runs"]] == ["done", "done", "running", "pending"]
    interrupted = saved["runs"][2]["run_id"]

    study = run_study(config, study_id="resume-test", progress=False)
    # seed-major: every method at seed 0 before any at seed 1; the interrupted (dpo, 1) resumes first
    assert [c[:2] for c in calls] == [("dpo", 0), ("ipo", 0), ("dpo", 1), ("dpo", 1), ("ipo", 1)]
    assert calls[3][2] == interrupted  # the unfinished run resumed under its own id
    assert pair_builds == ["synth_vqa", "synth_vqa"]  # one build per method, shared by its two seeds
    assert all(r["state"] == "done" for r in study.runs)

    result = report(study, run_config.store)
    records = result["records"]
    keys = {"method", "task", "metric", "mean", "sd", "n_seeds", "n_items", "delta_vs_base", "p_vs_base",
            "delta_vs_ref", "p_vs_ref", "mde"}
    assert keys <= set(records[0])
    by = {(r["method"], r["metric"]): r for r in records}
    store = ResultsStore(run_config.store)
    for method in ("dpo", "ipo"):
        record = by[(method, "closed_accuracy")]
        values = [store.results(run_ids=[r["run_id"]]) for r in study.runs if r["label"] == method]
        stored = [next(x["value"] for x in rows if x["metric"] == "closed_accuracy") for rows in values]
        assert record["n_seeds"] == 2 and record["mean"] == pytest.approx(sum(stored) / 2)
        assert record["delta_vs_base"] == pytest.approx(record["mean"] - by[("base", "closed_accuracy")]["mean"])
        assert 0 < record["p_vs_base"] <= 1 and record["n_items"] == by[("base", "closed_accuracy")]["n_items"]
    assert by[("ipo", "closed_accuracy")]["delta_vs_ref"] == pytest.approx(
        by[("ipo", "closed_accuracy")]["mean"] - by[("dpo", "closed_accuracy")]["mean"])
    svg = result["files"]["svg"].read_text()
    assert svg.startswith("<svg") and "synth_vqa/closed_accuracy" in svg and ">ipo</text>" in svg
    assert "| synth_vqa/closed_accuracy | dpo |" in result["files"]["md"].read_text()


def test_a_study_resumed_with_other_settings_is_refused(tmp_path, monkeypatch):
    from harness.pipeline import RunConfig
    from harness.study.runner import open_study

    first = StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=8))
    open_study(first, "settings-test")
    with pytest.raises(HarnessError, match="train_limit"):
        open_study(StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=9)),
                   "settings-test")
    # more seeds or entries extend the study instead
    grown = open_study(StudyConfig(methods=parse_methods("dpo,ipo"), seeds=[0, 1], run=RunConfig(train_limit=8)),
                       "settings-test")
    assert sorted((r["label"], r["seed"]) for r in grown.runs) == [("dpo", 0), ("dpo", 1), ("ipo", 0), ("ipo", 1)]


def test_the_cli_checks_every_entry_before_any_model_loads(capsys, monkeypatch):
    import harness.pipeline as pipeline
    from harness.cli import main

    monkeypatch.setattr(pipeline, "resolve_base_model", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    assert main(["study", "--methods", "base,dpo,mmedpo[ablaton=no-visual]", "--seeds", "2"]) == 2
    assert "did you mean 'ablation'" in capsys.readouterr().err
    assert main(["study", "--methods", "base,dpo", "--seed", "3"]) == 2
    assert "--seeds" in capsys.readouterr().err
