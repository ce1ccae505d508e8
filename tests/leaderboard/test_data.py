"""Tables: averages, deltas against the base model's own run, filters, sorting, snapshots, plots."""

from __future__ import annotations

import math

from lb_fakes import seed_store

from leaderboard import plots
from leaderboard import predictions as preds
from leaderboard.data import (
    AVERAGE,
    RUN_ID,
    TAB_BY_KEY,
    Board,
    Filters,
    method_deltas,
    pending_table,
    wide_table,
)


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


def test_method_deltas_average_over_runs_and_tasks(store):
    frame = method_deltas(_board(store), "closed_accuracy").set_index("Method")
    assert frame.loc["dpo", "Comparisons"] == 4 and frame.loc["dpo", "Runs"] == 2
    assert frame.loc["mmedpo", "Mean Δ closed_accuracy"] > frame.loc["dpo", "Mean Δ closed_accuracy"]
    assert "arXiv" in frame.loc["mmedpo", "Citation"] or frame.loc["mmedpo", "Citation"] == ""


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
    assert "<img" not in plots.delta_bars(["<img src=x>"], [1.0], "d")


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
