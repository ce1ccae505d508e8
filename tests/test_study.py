"""``harness study``: method entries, per-seed pair draws, the comparison on constructed predictions (by hand,
and the three cases of issue 24: a quieter method, a silent model, seed variance), and a real study on the tiny
model that is interrupted between runs and resumed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.core.io import write_jsonl
from harness.experiments.study import Study, StudyConfig, parse_methods, report, run_study
from harness.experiments.study.analysis import compare, format_rows
from harness.metrics import get_metric
from harness.metrics.synth_findings import finding_counts
from harness.results.store import ResultRow, ResultsStore, RunRecord
from harness.stats.multiplicity import holm


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


def _store_run(store, folder, run_id, method, task, rows, metric="closed_accuracy"):
    """A stored run whose predictions for ``task`` are ``rows`` of (id, answer type, reference, prediction)."""
    write_jsonl(folder / run_id / "predictions" / f"{task}.jsonl", [
        {"id": i, "task": task, "answer_type": kind, "reference": ref, "prediction": pred} for i, kind, ref, pred in rows])
    store.add_run(RunRecord(model="m", method=method, run_id=run_id, predictions_dir=str(folder / run_id)),
                  [ResultRow(task, metric, 0.0)])


def _study(tmp_path, task, base_id, runs: dict[str, list[str]], reference="dpo") -> Study:
    """A study over stored runs: ``runs`` maps a method label to its run ids, one per training seed."""
    state = {"settings": {"tasks": [task]}, "base_run_id": base_id, "methods": ["base", *runs],
             "reference": reference,
             "runs": [{"label": label, "method": label, "options": {}, "seed": seed, "run_id": run_id, "state": "done"}
                      for label, ids in runs.items() for seed, run_id in enumerate(ids)]}
    return Study("s", tmp_path / "study", state)


def _closed(correct):
    return [(f"q{i:04d}", "closed", "yes", "yes" if ok else "no") for i, ok in enumerate(correct)]


def _assert_consistent(records):
    """The acceptance of issue 24: on every row the interval of the delta vs base excludes 0 exactly when p < 0.05,
    and the adjusted p-values are Holm's over every test of the study."""
    for r in records:
        if r["p_vs_base"] is not None:
            assert (r["ci_low"] > 0 or r["ci_high"] < 0) == (r["p_vs_base"] < 0.05), r
            assert r["ci_low"] <= r["delta_vs_base"] <= r["ci_high"]
            assert r["units"] == "display" and r["test"]
    tests = [(r, k) for r in records for k in ("p_vs_base", "p_vs_ref") if r[k] is not None]
    assert [r[f"{k}_adj"] for r, k in tests] == pytest.approx(holm([r[k] for r, k in tests]))


def test_comparison_on_constructed_items_matches_a_hand_computation(tmp_path):
    store = ResultsStore(tmp_path / "store.sqlite")
    for run_id, correct in {"base": [1, 0, 0, 1] * 10, "dpo-0": [1, 0, 0, 0] * 10, "dpo-1": [1, 0, 0, 1] * 10,
                            "new-0": [1, 1, 0, 1] * 10, "new-1": [1, 1, 1, 1] * 10}.items():
        _store_run(store, tmp_path, run_id, run_id.split("-")[0], "synth_vqa", _closed(correct))
    study = _study(tmp_path, "synth_vqa", "base", {"dpo": ["dpo-0", "dpo-1"], "new": ["new-0", "new-1"]})
    records = compare(study, store, n_boot=500)
    by = {r["method"]: r for r in records if r["metric"] == "closed_accuracy"}
    new = by["new"]
    # display units: seed means 75 and 100; base 50; dpo seeds 25 and 50
    assert (new["mean"], new["sd"], new["n_seeds"], new["n_items"]) == pytest.approx(
        (87.5, math.sqrt(312.5), 2, 40))
    assert new["delta_vs_base"] == pytest.approx(37.5) and new["delta_vs_ref"] == pytest.approx(87.5 - 37.5)
    assert new["seed_variance"] == "estimated from 2 seeds" and new["scale"] == 100
    assert by["base"]["delta_vs_base"] is None and by["base"]["sd"] is None and by["base"]["n_seeds"] == 1
    assert by["dpo"]["delta_vs_ref"] is None and by["dpo"]["delta_vs_base"] == pytest.approx(-12.5)
    assert by["dpo"]["correction"] == "Holm over 3 tests"
    _assert_consistent(records)


@pytest.fixture(scope="module")
def reports():
    """1,000 synth_report references (about two thirds normal cases) and the ones with findings."""
    from harness.findings.synthetic import read_report
    from harness.tasks import get_task

    refs = list(get_task("synth_report").load("test", test_size=1000)["answer"])
    return refs, [bool(read_report(r).asserted) for r in refs]


CLEAR = "The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax."
INVENTED = ("The heart size is normal. There is a small nodule in the left lower lung. There is no pleural effusion. "
            "There is no pneumothorax.")


def _writer(refs, abnormal, seed, *, states, invents):
    """Reports that state a case's findings with probability ``states`` and invent one on a normal case with
    probability ``invents``; otherwise the lungs are clear."""
    rng = np.random.default_rng(seed)
    return [(ref if rng.random() < states else CLEAR) if sick else (INVENTED if rng.random() < invents else CLEAR)
            for ref, sick in zip(refs, abnormal)]


def _report_study(tmp_path, refs, base, arms: dict[str, list[list[str]]]):
    store = ResultsStore(tmp_path / "store.sqlite")
    rows = lambda preds: [(f"r{i:04d}", "report", ref, pred) for i, (ref, pred) in enumerate(zip(refs, preds))]  # noqa: E731
    _store_run(store, tmp_path, "base", None, "synth_report", rows(base), "finding_f1")
    ids = {}
    for label, runs in arms.items():
        ids[label] = [f"{label}-{s}" for s in range(len(runs))]
        for run_id, preds in zip(ids[label], runs):
            _store_run(store, tmp_path, run_id, label, "synth_report", rows(preds), "finding_f1")
    return compare(_study(tmp_path, "synth_report", "base", ids, reference="none"), store, n_boot=1000)


def _pooled_f1(preds, refs) -> float:
    tp, fp, fn = finding_counts(preds, refs)[:, :3].sum(axis=0)
    return 100 * 2 * tp / (2 * tp + fp + fn)


def test_a_quieter_method_gets_the_delta_interval_and_p_of_its_pooled_f1(tmp_path, reports):
    """Issue 24 (a): a method that states fewer findings. Its pooled F1 (the number printed) falls; the mean of
    per-report F1, which the old test ran on, rises (an empty report on a normal case scores 1.0). The delta, its
    interval and its p-value now all say the pooled F1 fell."""
    refs, abnormal = reports
    base = _writer(refs, abnormal, 0, states=0.6, invents=0.2)
    quiet = [_writer(refs, abnormal, seed, states=0.35, invents=0.0) for seed in (1, 2)]
    records = _report_study(tmp_path, refs, base, {"quiet": quiet})
    f1 = next(r for r in records if r["method"] == "quiet" and r["metric"] == "finding_f1")
    expected = np.mean([_pooled_f1(q, refs) for q in quiet]) - _pooled_f1(base, refs)
    assert f1["delta_vs_base"] == pytest.approx(expected) and expected < -5
    assert f1["ci_high"] < 0 and f1["p_vs_base"] < 0.05 and f1["n_items"] == 1000
    per_report = np.mean([np.mean(get_metric("finding_f1")(q, refs, n_boot=0).per_sample) for q in quiet]) - \
        np.mean(get_metric("finding_f1")(base, refs, n_boot=0).per_sample)
    assert per_report > 0.03  # the quantity the old p-value tested moved the other way
    _assert_consistent(records)


def test_a_silent_model_has_a_significant_finding_f1_drop(tmp_path, reports):
    """Issue 24 (b): a model that states nothing scores pooled F1 0; the old per-report test gave p = 1."""
    refs, abnormal = reports
    base = _writer(refs, abnormal, 0, states=0.6, invents=0.2)
    records = _report_study(tmp_path, refs, base, {"silent": [[CLEAR] * len(refs)]})
    by = {r["metric"]: r for r in records if r["method"] == "silent"}
    assert by["finding_f1"]["mean"] == 0 and by["finding_f1"]["delta_vs_base"] == pytest.approx(-_pooled_f1(base, refs))
    assert by["finding_f1"]["ci_high"] < 0 and by["finding_f1"]["p_vs_base"] < 1e-6
    assert by["finding_recall"]["p_vs_base"] < 1e-6
    assert by["finding_f1"]["seed_variance"] == "not estimated (one seed)"
    _assert_consistent(records)


def test_seed_variance_can_make_an_item_level_difference_not_significant(tmp_path):
    """Issue 24 (c): three seeds at 50, 70 and 90% against a base at 60% on 1,000 items: p < 1e-6 over items
    alone, but the training seeds move the metric by 20 points, so p >= 0.05 and the row says item-level only."""
    store = ResultsStore(tmp_path / "store.sqlite")
    first = lambda k: [int(i < k) for i in range(1000)]  # noqa: E731
    _store_run(store, tmp_path, "base", None, "synth_vqa", _closed(np.roll(first(600), 50)))
    for seed, k in enumerate((500, 700, 900)):
        _store_run(store, tmp_path, f"m-{seed}", "m", "synth_vqa", _closed(first(k)))
    records = compare(_study(tmp_path, "synth_vqa", "base", {"m": ["m-0", "m-1", "m-2"]}), store)
    row = next(r for r in records if r["method"] == "m" and r["metric"] == "closed_accuracy")
    assert row["delta_vs_base"] == pytest.approx(10.0) and row["sd"] == pytest.approx(20.0)
    assert row["p_item_vs_base"] < 1e-6 and row["p_vs_base"] >= 0.05 and row["item_level_only"] is True
    assert "Welch-Satterthwaite" in row["test"] and row["df"] < 3
    (table_row,) = [r for r in format_rows(records, "dpo") if r["method"] == "m" and "closed" in r["task/metric"]]
    assert table_row["note"] == "item-level only"
    _assert_consistent(records)


def test_each_seed_draws_its_own_pairs_and_every_seed_shares_the_base_evaluation():
    from harness.experiments import pipeline
    from harness.experiments.pipeline import RunConfig

    entry = parse_methods("dpo")[0]
    per_seed = StudyConfig(methods=[entry], seeds=[0, 1, 2], run=RunConfig(pair_seed=10))
    assert [per_seed.run_config(entry, s).pair_seed for s in (0, 1, 2)] == [10, 11, 12]
    assert [per_seed.run_config(entry, s).train.seed for s in (0, 1, 2)] == [0, 1, 2]
    shared = StudyConfig(methods=[entry], seeds=[0, 1], run=RunConfig(pair_seed=10), pair_draw="shared")
    assert {shared.run_config(entry, s).pair_seed for s in (0, 1)} == {10}
    assert per_seed.settings()["pair_draw"] == "per-seed" and shared.settings()["pair_draw"] == "shared"
    # the evaluation does not depend on the pair seed: one base evaluation for every seed's run
    ids = {pipeline.base_run_id_for(per_seed.run_config(entry, s), "tiny@abc") for s in (0, 1, 2)}
    assert len(ids) == 1
    with pytest.raises(HarnessError, match="--pair-draw"):
        StudyConfig(methods=[entry], pair_draw="sometimes")


@pytest.mark.slow
def test_a_study_interrupted_between_runs_resumes_without_redoing_finished_runs(tiny_model_dir, tmp_path,
                                                                                 monkeypatch):
    import harness.experiments.pipeline as pipeline
    from harness.experiments.pipeline import RunConfig

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
    config = StudyConfig(methods=parse_methods("base,dpo,ipo"), seeds=[0, 1], run=run_config, lr_rule="fixed")
    with pytest.raises(KeyboardInterrupt):
        run_study(config, study_id="resume-test", progress=False)
    from harness.experiments.study import load_study

    saved = load_study("resume-test").state
    assert [r["state"] for r in saved["runs"]] == ["done", "done", "running", "pending"]
    interrupted = saved["runs"][2]["run_id"]

    study = run_study(config, study_id="resume-test", progress=False)
    # seed-major: every method at seed 0 before any at seed 1; the interrupted (dpo, 1) resumes first
    assert [c[:2] for c in calls] == [("dpo", 0), ("ipo", 0), ("dpo", 1), ("dpo", 1), ("ipo", 1)]
    assert calls[3][2] == interrupted  # the unfinished run resumed under its own id
    # each seed draws its own pairs (--pair-draw per-seed), once: DPO and IPO have no pair builder of their own, so
    # at one seed they train on the same default-text draw
    assert pair_builds == ["synth_vqa"] * 2
    assert all(r["state"] == "done" for r in study.runs)

    result = report(study, run_config.store)
    records = result["records"]
    keys = {"method", "task", "metric", "mean", "sd", "n_seeds", "n_items", "delta_vs_base", "ci_low", "ci_high",
            "p_vs_base", "p_vs_base_adj", "delta_vs_ref", "p_vs_ref", "p_vs_ref_adj", "mde", "test", "units"}
    assert keys <= set(records[0])
    by = {(r["method"], r["metric"]): r for r in records}
    store = ResultsStore(run_config.store)
    for method in ("dpo", "ipo"):
        record = by[(method, "closed_accuracy")]
        values = [store.results(run_ids=[r["run_id"]]) for r in study.runs if r["label"] == method]
        stored = [next(x["value"] for x in rows if x["metric"] == "closed_accuracy") for rows in values]
        assert record["n_seeds"] == 2 and record["mean"] == pytest.approx(100 * sum(stored) / 2)
        assert record["delta_vs_base"] == pytest.approx(record["mean"] - by[("base", "closed_accuracy")]["mean"])
        assert 0 < record["p_vs_base"] <= 1 and record["n_items"] == by[("base", "closed_accuracy")]["n_items"]
    assert by[("ipo", "closed_accuracy")]["delta_vs_ref"] == pytest.approx(
        by[("ipo", "closed_accuracy")]["mean"] - by[("dpo", "closed_accuracy")]["mean"])
    svg = result["files"]["svg"].read_text()
    assert svg.startswith("<svg") and "synth_vqa/closed_accuracy" in svg and ">ipo</text>" in svg
    assert "| synth_vqa/closed_accuracy | dpo |" in result["files"]["md"].read_text()
    _assert_consistent(records)
    assert len({r["pair_seed"] for r in study.runs if r["label"] == "dpo"}) == 2


@pytest.mark.slow
def test_every_run_trains_equal_steps_at_the_rate_its_own_sweep_chose(tiny_model_dir, tmp_path):
    """Issue 23 (equal budgets): every run trains one pass over the largest pair set (MMedPO's text + visual
    pairs), DPO included; each entry's rate is the best of its own validation sweep; all of it is recorded."""
    from harness.experiments.pipeline import RunConfig
    from harness.experiments.study.budget import selection_score

    run_config = RunConfig(model="tiny", tasks=("synth_vqa", "synth_report"), train_limit=6, eval_limit=6,
                           store=str(tmp_path / "s.sqlite"), train={"batch_size": 4, "lr": 1e-3})
    config = StudyConfig(methods=parse_methods("base,dpo,mmedpo"), seeds=[0, 1], run=run_config, lr_grid=(0.5, 4),
                         val_limit=6)
    study = run_study(config, study_id="budget-test", progress=False)
    state = study.state
    counts = state["pair_counts"]
    assert set(counts) == {f"{m}|seed {s}" for m in ("dpo", "mmedpo") for s in (0, 1)}
    assert counts["mmedpo|seed 0"] > counts["dpo|seed 0"]  # visual pairs on top of the same text pairs
    steps = max(-(-n // 4) for n in counts.values())
    assert state["budget"] == {"mode": "steps", "steps": steps, "per_step_pairs": 4,
                               "from": f"{max(counts, key=counts.get)}: {max(counts.values())} pairs"}
    store = ResultsStore(run_config.store)
    for label in ("dpo", "mmedpo"):
        sweep = state["lr"][label]
        assert sweep["rule"] == "sweep" and set(sweep["tried"]) == {"0.0005", "0.004"}
        scores = {t["rate"]: t["score"] for t in sweep["tried"].values()}
        assert scores == {t["rate"]: selection_score(store, t["run_id"], ["synth_vqa", "synth_report"])
                          for t in sweep["tried"].values()}
        assert sweep["rate"] == max(scores, key=lambda r: (scores[r], -r))
        # the sweep scored on the validation split, never on the test split the study compares
        for tried in sweep["tried"].values():
            assert _pipeline_json(tried["run_id"])["config"]["eval_split"] == "val"
        for record in study.runs_of(label):
            train = _pipeline_json(record["run_id"])["config"]["train"]
            assert train["max_steps"] == steps and train["lr"] == pytest.approx(sweep["rate"])
            assert train["seed"] == record["seed"]
    assert study.runs_of("dpo")[0]["pairs"] == counts["dpo|seed 0"]  # the runs reused the pre-built pairs


def _pipeline_json(run_id):
    from harness.core.io import read_json
    from harness.core.paths import runs_dir

    return read_json(runs_dir() / run_id / "pipeline.json")


def test_budget_and_lr_options_are_checked_and_recorded():
    from harness.experiments.pipeline import RunConfig

    entry = parse_methods("dpo")[0]
    paper = StudyConfig(methods=[entry], run=RunConfig(), budget="paper", lr_rule="fixed")
    train = paper.run_config(entry, 1).train
    assert (train.epochs, train.warmup_ratio, train.max_steps, train.seed) == (3.0, 0.03, 0, 1)
    steps = StudyConfig(methods=[entry], run=RunConfig())
    assert steps.run_config(entry, 0, steps=40, lr=2e-5).train.max_steps == 40
    assert steps.run_config(entry, 0, steps=40, lr=2e-5).train.lr == 2e-5
    assert steps.settings()["budget"] == {"mode": "steps", "steps": None}
    assert steps.settings()["lr_rule"]["rule"] == "sweep" and steps.settings()["lr_rule"]["grid"] == [0.5, 1.0, 2.0, 4.0]
    for bad, message in [({"budget": "flops"}, "--budget"), ({"steps": 0}, "--steps"),
                         ({"budget": "epochs", "steps": 10}, "--steps"), ({"lr_rule": "guess"}, "--lr-rule"),
                         ({"lr_grid": (1.0, -2.0)}, "--lr-grid"), ({"val_limit": 0}, "--val-limit")]:
        with pytest.raises(HarnessError, match=message):
            StudyConfig(methods=[entry], run=RunConfig(), **bad)


def test_a_sweep_needs_a_validation_split_in_every_task(capsys):
    from harness.cli import main

    assert main(["study", "--methods", "base,dpo", "--tasks", "vqa_rad", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "'val' split, which task 'vqa_rad' lacks" in err and "--lr-rule fixed" in err
    assert main(["study", "--methods", "base,dpo", "--val-split", "test", "--seeds", "1"]) == 2
    assert "neither the pairs nor the evaluation" in capsys.readouterr().err


def test_a_study_resumed_with_other_settings_is_refused(tmp_path, monkeypatch):
    from harness.experiments.pipeline import RunConfig
    from harness.experiments.study.runner import open_study

    first = StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=8))
    open_study(first, "settings-test")
    with pytest.raises(HarnessError, match="train_limit"):
        open_study(StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=9)),
                   "settings-test")
    with pytest.raises(HarnessError, match="pair_draw"):
        open_study(StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=8),
                               pair_draw="shared"), "settings-test")
    # more seeds or entries extend the study instead
    grown = open_study(StudyConfig(methods=parse_methods("dpo,ipo"), seeds=[0, 1], run=RunConfig(train_limit=8)),
                       "settings-test")
    assert sorted((r["label"], r["seed"]) for r in grown.runs) == [("dpo", 0), ("dpo", 1), ("ipo", 0), ("ipo", 1)]
    # a study from before per-seed pair draws shared one draw: it resumes with --pair-draw shared
    import json

    saved = json.loads(grown.path.read_text())
    del saved["settings"]["pair_draw"]
    grown.path.write_text(json.dumps(saved))
    open_study(StudyConfig(methods=parse_methods("dpo"), seeds=[0], run=RunConfig(train_limit=8), pair_draw="shared"),
               "settings-test")


def test_the_cli_checks_every_entry_before_any_model_loads(capsys, monkeypatch):
    import harness.experiments.pipeline as pipeline
    from harness.cli import main

    monkeypatch.setattr(pipeline, "resolve_base_model", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    assert main(["study", "--methods", "base,dpo,mmedpo[ablaton=no-visual]", "--seeds", "2"]) == 2
    assert "did you mean 'ablation'" in capsys.readouterr().err
    assert main(["study", "--methods", "base,dpo", "--seed", "3"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_the_effect_plot_fills_a_dot_only_when_interval_and_p_agree():
    from harness.experiments.study.plot import effect_svg

    common = {"task": "synth_report", "metric": "finding_f1", "higher_is_better": True}
    new = {**common, "method": "new", "delta_vs_base": 0.87, "ci_low": 0.38, "ci_high": 1.36, "p_vs_base": 0.001,
           "units": "display"}
    old = {**common, "method": "old", "delta_vs_base": 0.0087, "ci_low": -0.0038, "ci_high": 0.0212,
           "p_vs_base": 0.001}  # natural units: an older record whose p tested per-report scores
    dots = [part.split("</circle>")[0] for part in effect_svg([new, old]).split("<circle")[1:]]
    assert 'fill="#1f77b4"' in dots[0] and "new: +0.87 *" in dots[0]
    assert 'fill="white"' in dots[1] and "old: +0.87</title>" in dots[1]  # scaled x100, not significant


def test_paired_deltas_mark_what_the_paired_interval_excludes(tmp_path):
    """`harness run`'s Δ row: the run minus the base on the same items, its paired interval, and a mark only where
    that interval excludes 0."""
    from harness.experiments.study.analysis import paired_deltas

    store = ResultsStore(tmp_path / "store.sqlite")
    _store_run(store, tmp_path, "base", None, "synth_vqa", _closed([1, 0, 0, 1] * 100))   # 50%
    _store_run(store, tmp_path, "better", "x", "synth_vqa", _closed([1, 1, 0, 1] * 100))  # 75%: +25 on 400 items
    _store_run(store, tmp_path, "same", "x", "synth_vqa", _closed([1, 0, 1, 0] * 100))    # 50%, other items right
    better = paired_deltas(store, "base", "better", ["synth_vqa"], n_boot=500)["synth_vqa/closed_accuracy"]
    assert better["delta"] == pytest.approx(25.0) and better["n_items"] == 400
    assert better["significant"] and better["ci_low"] > 0 and better["p"] < 0.05
    same = paired_deltas(store, "base", "same", ["synth_vqa"], n_boot=500)["synth_vqa/closed_accuracy"]
    assert same["delta"] == pytest.approx(0.0) and not same["significant"]
    assert same["ci_low"] < 0 < same["ci_high"]


def test_the_study_bar_names_a_starting_run_without_forcing_a_redraw_in_a_log():
    """The label of the run now starting is drawn at once only when the bar's mininterval has passed (30 s in a
    log): a study of quick runs does not redraw per run. The bar's clock is set by hand, no wall clock."""
    import io

    from tqdm import std

    from harness.experiments.study.runner import show_postfix

    stream = io.StringIO()  # not a terminal
    bar = std.tqdm(total=4, file=stream, mininterval=30)
    now = [bar.last_print_t]
    bar._time = lambda: now[0]
    drawn = stream.getvalue()
    show_postfix(bar, "dpo seed 0")
    assert stream.getvalue() == drawn and bar.postfix == "dpo seed 0"  # 0 s since the last redraw: not drawn
    now[0] += 31
    show_postfix(bar, "dpo seed 1")
    assert stream.getvalue().endswith("dpo seed 1]")  # due: drawn now
    drawn = stream.getvalue()
    show_postfix(bar, "dpo seed 2")
    assert stream.getvalue() == drawn
    bar.close()
    disabled = std.tqdm(total=1, disable=True)
    show_postfix(disabled, "base")  # a disabled bar has no clock: nothing to draw
