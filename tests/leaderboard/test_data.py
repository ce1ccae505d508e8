"""Tables: averages, deltas against the base model's own run, filters, sorting, snapshots, plots."""

from __future__ import annotations

import json
import math

import pytest
from lb_fakes import seed_store

from leaderboard import plots
from leaderboard import predictions as preds
from leaderboard.data import (
    AVERAGE,
    RUN_ID,
    TAB_BY_KEY,
    Board,
    Filters,
    pending_table,
    wide_table,
)
from leaderboard.method_table import method_deltas


def _board(store) -> Board:
    return Board.from_store(store)


def test_delta_is_the_run_minus_its_base_models_own_run(store):
    board = _board(store)
    frame = wide_table(board, TAB_BY_KEY["vqa"]).set_index(RUN_ID)
    col = "vqa_rad/closed_accuracy"
    scale = board.metric("closed_accuracy").display_scale
    raw = {(r["run_id"], r["metric"], r["task"]): r["value"] for r in store.results()}
    expected = (raw[("fake-run-1", "closed_accuracy", "vqa_rad")] - raw[("fake-run-0", "closed_accuracy", "vqa_rad")])
    assert math.isclose(frame.loc["fake-run-1", f"{col} Δ"], round(expected * scale, 2), abs_tol=0.011)
    assert math.isnan(frame.loc["fake-run-0", f"{col} Δ"])  # a base model has no delta against itself


def test_average_skips_lower_is_better_metrics_and_rows_are_best_first(store):
    board = _board(store)
    frame = wide_table(board, TAB_BY_KEY["factuality"])
    assert list(frame[AVERAGE]) == sorted(frame[AVERAGE], reverse=True)
    row = frame.iloc[0]
    assert row[AVERAGE] == row["iu_xray/chexpert_f1_micro"]  # hallucination_rate is not averaged in
    by_rate = wide_table(board, TAB_BY_KEY["factuality"], sort_by="iu_xray/hallucination_rate")
    assert list(by_rate["iu_xray/hallucination_rate"]) == sorted(by_rate["iu_xray/hallucination_rate"])


def test_filters_search_and_columns(store):
    board = _board(store)
    tab = TAB_BY_KEY["vqa"]
    assert set(wide_table(board, tab, Filters(search="MMEDPO"))["Model"]) == {"fake-base-7b-mmedpo"}
    assert set(wide_table(board, tab, Filters(base_models=["fake-small-2b"]))["Model"]) == {
        "fake-small-2b", "fake-small-2b-dpo"}
    assert set(wide_table(board, tab, Filters(methods=["dpo"], model_types=["llava"]))["Model"]) == {
        "fake-base-7b-dpo"}
    only_slake = wide_table(board, tab, Filters(tasks=["slake"]), show_ci=True)
    assert not any(c.startswith("vqa_rad/") for c in only_slake.columns)
    assert only_slake["slake/closed_accuracy CI"].str.match(r"^\[\d+\.\d\d, \d+\.\d\d\]$").all()
    chosen = wide_table(board, tab, columns=["slake/open_recall"], show_delta=False)
    assert [c for c in chosen.columns if "/" in c] == ["slake/open_recall"]


def test_pending_and_rejected_runs_stay_off_the_tables(store):
    import json

    from lb_fakes import submission

    from leaderboard.submit import reject, submit_bytes
    ids = submit_bytes(json.dumps(submission("fake-waiting")).encode(), store).stored
    other = submit_bytes(json.dumps(submission("fake-refused", value=0.3)).encode(), store).stored
    reject(store, other[0])
    board = _board(store)
    assert "fake-waiting" not in set(wide_table(board, TAB_BY_KEY["vqa"])["Model"])
    assert list(pending_table(board)[RUN_ID]) == ids


def test_method_rows_are_per_base_model_and_method_and_average_over_tasks(store):
    frame = method_deltas(_board(store), "closed_accuracy")
    rows = {(r["Base model"], r["Method"]): r for r in frame.to_dict("records")}
    assert set(rows) == {("fake-base-7b", "dpo"), ("fake-base-7b", "mmedpo"), ("fake-small-2b", "dpo")}
    dpo = rows[("fake-base-7b", "dpo")]
    assert dpo["Runs"] == 1 and dpo["Run IDs"] == "fake-run-1" and dpo["Seeds"] == "1"
    raw = {(r["run_id"], r["task"]): r["value"] for r in store.results() if r["metric"] == "closed_accuracy"}
    expected = sum(raw[("fake-run-1", t)] - raw[("fake-run-0", t)] for t in ("vqa_rad", "slake")) / 2 * 100
    assert dpo["Mean Δ closed_accuracy"] == round(expected, 2)  # the run's Δ is its mean over both tasks
    assert rows[("fake-base-7b", "mmedpo")]["Mean Δ closed_accuracy"] > dpo["Mean Δ closed_accuracy"]
    assert "arXiv" in rows[("fake-base-7b", "mmedpo")]["Citation"]


def test_snapshot_round_trip_keeps_approved_runs_and_metadata(store, tmp_path):
    import json

    board = _board(store)
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(board.to_snapshot()), "utf-8")
    again = Board.from_snapshot(path)
    tab = TAB_BY_KEY["report"]
    assert wide_table(again, tab).equals(wide_table(board, tab))
    assert all("predictions_dir" not in run for run in json.loads(path.read_text())["runs"])


def test_plots_escape_submitter_text():
    import pandas as pd

    frame = pd.DataFrame({"Model": ["<script>alert(1)</script>"], "t/m": [50.0], RUN_ID: ["r"]})
    svg = plots.task_bars(frame, ["t/m"], {("r", "t/m"): (40.0, 60.0)}, "title")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<path") == 1
    assert "<img" not in plots.forest([{"label": "<img src=x>", "effect": 1.0, "low": 0.5, "high": 1.5}], "d")


def test_predictions_are_read_defensively(tmp_path):
    store = seed_store(tmp_path / "p.sqlite", tmp_path / "runs")
    run = store.get_run("fake-run-2")
    files = preds.prediction_files(run)
    assert list(files) == ["vqa_rad"]  # part files are skipped
    records = preds.read_records(files["vqa_rad"])
    assert [r["id"] for r in records] == ["q1", "q2", "q3"]  # the truncated last line is skipped
    assert list(preds.table(records, wrong_only=True)["ID"]) == ["q2"]
    assert preds.image_path(records[1], run, "vqa_rad").name == "fake_scan.png"
    assert preds.image_path(records[2], run, "vqa_rad") is None
    assert preds.prediction_files({**run, "source": "submission"}) == {}


# ---------------------------------------------------------------- the defects of issue 15, one test each


def test_a_submission_named_like_a_base_model_changes_no_delta_and_is_flagged_at_approval(store):
    import json

    from lb_fakes import submission

    from leaderboard.submit import approve, name_flags, submit_bytes

    before = wide_table(_board(store), TAB_BY_KEY["vqa"]).set_index(RUN_ID)
    impostor = submission("fake-base-7b", value=0.05, method=None, base="fake-base-7b")
    (run_id,) = submit_bytes(json.dumps(impostor).encode(), store).stored
    flags = name_flags(store, store.get_run(run_id))
    assert flags and "fake-base-7b" in flags[0] and "fake-run-0" in flags[0]
    flagged: list[str] = []
    assert approve(store, [run_id], flagged=flagged) == [] and flagged == flags  # held back, maintainer told
    assert store.get_run(run_id)["status"] == "pending"
    assert approve(store, [run_id], force=True) == [run_id]
    after = wide_table(_board(store), TAB_BY_KEY["vqa"]).set_index(RUN_ID)
    col = "vqa_rad/closed_accuracy Δ"
    # newer and named like the base model, yet no run's Δ moves: the baseline is the run id in provenance
    assert after.loc["fake-run-2", col] == before.loc["fake-run-2", col]
    assert math.isnan(after.loc[run_id, col])


def test_average_is_over_rates_only_and_cider_gets_its_own_chart(store):
    from leaderboard.app import render_tab
    from leaderboard.data import averaged_columns

    board = _board(store)
    tab = TAB_BY_KEY["report"]
    frame = wide_table(board, tab)
    row = frame.iloc[0]
    assert averaged_columns(board, board.default_columns(tab)) == ["iu_xray/bleu", "iu_xray/rouge_l"]
    assert row[AVERAGE] == round((row["iu_xray/bleu"] + row["iu_xray/rouge_l"]) / 2, 2)  # CIDEr x100 left out
    _, svg = render_tab(board, 1, Filters(), None, None, "best first", False, True)
    charts = svg.split("<svg")[1:]
    assert len(charts) == 2 and "iu_xray/cider" not in charts[0] and "own axis" in charts[1]


def test_partial_test_set_runs_are_marked_and_ranked_after_every_full_run(store):
    from harness.results.store import ResultRow, RunRecord
    from leaderboard.data import RANK, TEST_SET

    store.add_run(RunRecord(model="fake-limit-10", base_model="fake-base-7b", method="dpo", run_id="fake-limit",
                            config={"role": "method", "base_run_id": "fake-run-0", "signature": {"limit": 10}}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.99, 0.9, 1.0, 10)])
    frame = wide_table(_board(store), TAB_BY_KEY["vqa"], columns=["vqa_rad/closed_accuracy"])
    last = frame.iloc[-1]
    assert last[RUN_ID] == "fake-limit" and last[TEST_SET] == "partial (limit 10)"
    assert list(frame[RANK]) == list(range(1, len(frame) + 1))  # the best value, ranked after the full runs
    methods = method_deltas(_board(store), "closed_accuracy")
    partial = methods[methods["Run IDs"] == "fake-limit"].iloc[0]  # shown, marked, listed after the full rows
    assert partial[TEST_SET] == "partial (limit 10)" and methods.index[-1] == partial.name


def test_deltas_follow_each_metrics_direction_and_methods_without_runs_are_left_out(store):
    from leaderboard.data import delta_direction

    board = _board(store)
    assert delta_direction(board, "iu_xray/hallucination_rate Δ") is False
    assert delta_direction(board, "iu_xray/bleu Δ") is True
    rates = method_deltas(board, "hallucination_rate").set_index("Method")
    assert rates.loc["mmedpo", "Mean Δ hallucination_rate"] < 0
    assert rates.loc["mmedpo", "Effect"] == "better in 1 of 1 seed"  # lower is better for this rate
    assert set(rates.index) == {"dpo", "mmedpo"}  # registered methods without a run stay off the table
    svg = plots.forest([{"label": "worse-rate", "effect": 27.0, "low": 20.0, "high": 30.0}], "d",
                       higher_is_better=False)
    assert plots.WORSE in svg and plots.BETTER not in svg  # +27 in a lower-is-better rate is red


def test_pending_names_are_hidden_from_the_public_table(store):
    import json

    from lb_fakes import submission

    from leaderboard.submit import submit_bytes
    (run_id,) = submit_bytes(json.dumps(submission("fake-secret-name")).encode(), store).stored
    table = pending_table(_board(store))
    assert list(table[RUN_ID]) == [run_id]
    assert "fake-secret-name" not in table.to_string() and "Model" not in table.columns


def test_snapshot_holds_no_local_paths_fingerprints_or_submitter_ids(store, tmp_path):
    import json

    from harness.results.store import ResultRow, RunRecord
    store.add_run(RunRecord(model="/home/someone/models/llava-7b+dpo", base_model="/home/someone/models/llava-7b",
                            method="dpo", predictions_dir="/home/someone/runs/x", fingerprint="sha256:abc",
                            config={"role": "method", "base_run_id": "fake-run-0", "submitted_by": "sha256:me",
                                    "pipeline": {"data_dir": "/home/someone/data", "eval_limit": None,
                                                 "train": {"precision": "bf16"}}}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.5)])
    text = json.dumps(_board(store).to_snapshot())
    assert "/home/" not in text and "sha256:abc" not in text and "sha256:me" not in text
    snap = json.loads(text)
    run = next(r for r in snap["runs"] if r["model"] == "llava-7b+dpo")
    assert run["base_model"] == "llava-7b" and run["config"]["precision"] == "bf16"
    assert run["config"]["base_run_id"] == "fake-run-0"


def test_charts_use_round_ticks_distinct_legends_and_a_cjk_font_fallback():
    import pandas as pd

    assert plots.nice_ticks(0, 94.6) == [0, 25, 50, 75, 100]  # never 94.6, 70.95 ...
    assert plots.nice_ticks(0, 70.9) == [0, 20, 40, 60, 80]
    assert plots.nice_ticks(-3.2, 7.9) == [-5, 0, 5, 10]
    names = ["fake-" + "x" * 40 + "-dpo", "fake-" + "x" * 40 + "-simpo", "dup" * 20, "dup" * 20]
    labels = plots.short_labels(names)
    assert len(set(labels)) == 4 and labels[0].endswith("-dpo") and labels[1].endswith("simpo")
    frame = pd.DataFrame({"Model": ["医学模型-七号"], "t/m": [50.0], RUN_ID: ["r"]})
    svg = plots.task_bars(frame, ["t/m"], {}, "title")
    assert "医学模型-七号" in svg and "Noto Sans CJK" in svg and "rotate(" not in svg


def test_study_table_and_forest_plot_show_seeds_deltas_significance_and_direction(store, tmp_path):
    from lb_fakes import write_fake_study

    from leaderboard.data import forest_rows, load_studies, study_label, study_table

    write_fake_study(tmp_path / "studies")
    write_fake_study(tmp_path / "studies", "fake-study-2", eval_limit=20)
    board = Board.from_store(store, tmp_path / "studies")
    full, partial = sorted(board.studies, key=lambda s: s["study_id"])
    assert "partial test set (first 20 items)" in study_label(partial) and "partial" not in study_label(full)
    assert "/home/" not in study_label(full)
    table = {(r["Task/metric"], r["Method"]): r for r in study_table(board, full).to_dict("records")}
    dpo = table[("synth_vqa/closed_accuracy", "dpo")]
    assert dpo["Mean ± sd"] == "75.0 ± 1.0" and dpo["Δ base"] == 5.0 and dpo["Sig. base"] == "**"
    mmedpo = table[("synth_report/false_finding_rate (lower better)", "mmedpo")]
    assert mmedpo["Δ dpo"] == -12.0 and mmedpo["Sig. dpo"] == "**" and mmedpo["Seeds"] == 3
    assert table[("synth_vqa/closed_accuracy", "mmedpo")]["Sig. dpo"] == ""  # p = 0.4
    rows = forest_rows(board, full, "synth_report/false_finding_rate")
    assert [(r["label"], round(r["effect"], 1)) for r in rows] == [("dpo", 7.0), ("mmedpo", -5.0)]
    svg = plots.forest(rows, "t", higher_is_better=False)
    dpo_dot = svg.split("<circle")[1]
    assert plots.WORSE in dpo_dot and plots.BETTER in svg.split("<circle")[2]  # a rate going up is worse
    assert load_studies(tmp_path / "nowhere") == []
    snap = board.to_snapshot()
    assert len(snap["studies"]) == 2 and "/home/" not in json.dumps(snap["studies"])


def test_about_cards_come_from_the_task_and_metric_registries(store):
    from harness.metrics import METRICS
    from harness.tasks import TASKS, get_task
    from leaderboard.app import about_markdown
    from leaderboard.data import benchmark_cards

    cards = {c["task"]: c for c in benchmark_cards(store.results())}
    assert set(cards) == set(TASKS.names())
    vqa = cards["vqa_rad"]
    assert vqa["description"] == get_task("vqa_rad").description
    assert [m["name"] for m in vqa["metrics"]] == list(get_task("vqa_rad").metrics)
    closed = next(m for m in vqa["metrics"] if m["name"] == "closed_accuracy")
    assert closed["description"] == METRICS.get("closed_accuracy").description and closed["code"]
    assert cards["synth_report"]["test_n"] == get_task("synth_report").sizes()["test"]
    board = _board(store)
    board.cards = list(cards.values())
    text = about_markdown(board)
    assert "Last updated: **2025-01-05" in text and "@software" in text and "fake-base-7b-mmedpo" in text


def test_about_lists_a_local_runs_precision_and_a_submissions_card(store):
    from harness.results.store import ResultRow, RunRecord
    from leaderboard.app import about_markdown

    store.add_run(RunRecord(model="fake-bf16", method="dpo", run_id="fake-bf16",
                            config={"role": "method", "pipeline": {"train": {"precision": "bf16"}}}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.5)])
    store.add_run(RunRecord(model="fake-card", method="dpo", run_id="fake-card", source="submission",
                            config={"card": {"model_url": "https://example.org/m", "params": 7_000_000_000,
                                             "license": "mit"}}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.51)])
    lines = about_markdown(_board(store)).splitlines()
    assert "| bf16 |" in next(line for line in lines if line.startswith("| fake-bf16 "))
    card = next(line for line in lines if line.startswith("| fake-card "))
    assert "| 7.0B |" in card and "| mit |" in card and "[model card](https://example.org/m)" in card


def test_a_study_row_whose_interval_spans_zero_is_never_drawn_as_significant(store, tmp_path):
    """The plot, the interval and the p-value cannot disagree: an older record whose p-value (from per-report
    scores) says 0.001 while its interval spans 0 gets no mark and a grey dot; a new record's p and interval
    come from one test and are shown together."""
    from lb_fakes import write_fake_study

    from leaderboard.data import forest_rows, study_table

    folder = write_fake_study(tmp_path / "studies")
    records = json.loads((folder / "results.json").read_text())
    old = {"method": "old", "task": "synth_report", "metric": "finding_f1", "mean": 0.1, "sd": 0.01, "n_seeds": 3,
           "n_items": 500, "delta_vs_base": 0.0087, "ci_low": -0.0038, "ci_high": 0.0212, "p_vs_base": 0.001,
           "higher_is_better": True}  # natural units, as harness study wrote them before issue 24
    new = {**{k: v * 100 if isinstance(v, float) and k not in ("p_vs_base",) else v for k, v in old.items()},
           "method": "new", "ci_low": 0.38, "ci_high": 1.36, "p_vs_base": 0.0005, "p_vs_base_adj": 0.01,
           "units": "display", "scale": 100.0}
    (folder / "results.json").write_text(json.dumps(records + [old, new]))
    board = Board.from_store(store, tmp_path / "studies")
    (study,) = board.studies
    table = {r["Method"]: r for r in study_table(board, study, "synth_report/finding_f1").to_dict("records")}
    assert table["old"]["Sig. base"] == "" and table["old"]["95% CI"] == "[-0.38, +2.12]"
    assert table["new"]["Sig. base"] == "**" and table["new"]["95% CI"] == "[+0.38, +1.36]"
    assert table["new"]["p adj."] == "0.01"
    rows = {r["label"]: r for r in forest_rows(board, study, "synth_report/finding_f1")}
    assert not rows["old"]["significant"] and rows["old"]["mark"] == ""
    assert rows["new"]["significant"] and rows["new"]["effect"] == pytest.approx(0.87)
    svg = plots.forest(list(rows.values()), "t")
    old_dot, new_dot = (part.split("</circle>")[0] for part in svg.split("<circle")[1:3])
    assert plots.BETTER not in old_dot and "#777" in old_dot and plots.BETTER in new_dot
