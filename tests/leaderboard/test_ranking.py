"""A board of real-looking runs: partial and single-task runs ranked and drawn, Methods rows per setting with
their seeds, Δ only against a checked base run, model card columns and filters, citations, an empty store.

Every number here is synthetic (models are named ``fake-*``); none is a real result.
"""

from __future__ import annotations

import json
import math
import re

from harness.results.store import ResultRow, ResultsStore, RunRecord
from leaderboard.data import (
    AVERAGE,
    AVERAGED,
    LICENSE,
    LINK,
    PARAMS,
    PRECISION,
    RANK,
    RUN_ID,
    SEED,
    TAB_BY_KEY,
    TEST_SET,
    Board,
    Filters,
    choices,
    provenance_lines,
    wide_table,
)
from leaderboard.method_table import method_deltas

BASE = "fake-base@0123456789abcdef"  # a harness model name: <folder>@<weights fingerprint>


def _rows(**values: float) -> list[ResultRow]:
    """``vqa_rad_closed_accuracy=0.7`` -> a vqa_rad closed_accuracy row over 50 items."""
    out = []
    for key, value in values.items():
        task = next(t for t in ("vqa_rad", "slake") if key.startswith(t + "_"))
        out.append(ResultRow(task, key[len(task) + 1:], value, value - 0.05, value + 0.05, 50))
    return out


def _trained(run_id: str, method: str, seed: int, lr: float = 1e-5, limit: int | None = 50,
             base_run: str | None = "fake-base-run", **values: float) -> tuple[RunRecord, list[ResultRow]]:
    pipeline = {"method": method, "options": {}, "eval_split": "test", "eval_limit": limit,
                "train": {"lr": lr, "seed": seed, "max_steps": 100, "run_name": "x"}, "data_dir": "/somewhere"}
    config = {"role": "method", "train_seed": seed, "base_run_id": base_run, "limit": limit, "pipeline": pipeline,
              "signature": {"split": "test", "limit": limit}}
    return RunRecord(model=f"{BASE}+{method}", base_model=BASE, method=method, model_type="llava", config=config,
                     seed=0, run_id=run_id, created_at=f"2025-03-0{seed + 1}T00:00:0{len(run_id) % 10}+00:00"), \
        _rows(**values)


def _partial_store(tmp_path) -> ResultsStore:
    """Only partial runs, each on one task (vqa_rad or slake), beside their base run on both."""
    store = ResultsStore(tmp_path / "partial.sqlite")
    store.add_run(RunRecord(model=BASE, base_model=BASE, model_type="llava", run_id="fake-base-run",
                            config={"role": "base", "limit": 50, "signature": {"split": "test", "limit": 50}},
                            created_at="2025-02-01T00:00:00+00:00"),
                  _rows(vqa_rad_closed_accuracy=0.60, vqa_rad_open_recall=0.30, slake_closed_accuracy=0.50,
                        slake_open_recall=0.20))
    for record, rows in (_trained("fake-dpo-0", "dpo", 0, vqa_rad_closed_accuracy=0.70, vqa_rad_open_recall=0.40),
                         _trained("fake-dpo-1", "dpo", 1, vqa_rad_closed_accuracy=0.66, vqa_rad_open_recall=0.38),
                         _trained("fake-mmedpo-0", "mmedpo", 0, slake_closed_accuracy=0.90,
                                  slake_open_recall=0.80)):
        store.add_run(record, rows)
    return store


def test_partial_and_single_task_runs_are_ranked_and_drawn(tmp_path):
    from leaderboard.app import render_tab

    board = Board.from_store(_partial_store(tmp_path))
    frame = wide_table(board, TAB_BY_KEY["vqa"])
    assert set(frame[TEST_SET]) == {"partial (limit 50)"}
    assert list(frame[RANK]) == [1, 2, 3, 4]  # every row ranked, none blank
    by_id = frame.set_index(RUN_ID)
    # the base run has all four columns; the others average the two of their one task, and rank after it
    assert by_id.loc["fake-base-run", AVERAGED] == "4 of 4" and by_id.loc["fake-base-run", RANK] == 1
    assert by_id.loc["fake-mmedpo-0", AVERAGE] == 85.0 and by_id.loc["fake-mmedpo-0", AVERAGED] == "2 of 4"
    assert by_id.loc["fake-dpo-0", AVERAGE] == 55.0 and by_id.loc["fake-dpo-1", RANK] == 4
    assert list(by_id.loc[["fake-dpo-0", "fake-dpo-1"], SEED]) == [0, 1]  # the training seed, not the eval's
    only_slake = wide_table(board, TAB_BY_KEY["vqa"], Filters(tasks=["slake"]))  # one task: ranked within it
    assert list(only_slake[RUN_ID]) == ["fake-mmedpo-0", "fake-base-run"]

    _, html = render_tab(board, 0, Filters(), None, AVERAGE, "best first", False, True)
    assert "No results to plot" not in html and html.count('class="lb-partial"') >= 4  # hatched bars
    legend = re.findall(r'font-size="11"><title>[^<]*</title>([^<]*)</text>', html)
    assert legend[:3] == ["fake-base", "fake-base+mmedpo s0", "fake-base+dpo s0"]  # no fingerprint; the seed
    assert "hatched: partial test set" in html


def test_delta_only_against_an_approved_base_run_of_the_same_weights(tmp_path):
    store = _partial_store(tmp_path)
    rogue = RunRecord(model=BASE, base_model=BASE, source="submission", status="pending", run_id="fake-rogue-base",
                      config={})
    store.add_run(rogue, _rows(vqa_rad_closed_accuracy=0.05, vqa_rad_open_recall=0.05))
    other = RunRecord(model="fake-other@fedcba9876543210", source="submission", run_id="fake-other-base", config={})
    store.add_run(other, _rows(vqa_rad_closed_accuracy=0.05, vqa_rad_open_recall=0.05))
    for run_id, base, method in (("fake-sub-pending", "fake-rogue-base", "ipo"),
                                 ("fake-sub-other", "fake-other-base", "simpo"), ("fake-sub-good", "fake-base-run", "mmedpo")):
        record, rows = _trained(run_id, method, 3, vqa_rad_closed_accuracy=0.60, vqa_rad_open_recall=0.35)
        record.source, record.config = "submission", {"base_run_id": base, "verification": {"base_run": "verified"}}
        store.add_run(record, rows)
    board = Board.from_store(store)
    frame = wide_table(board, TAB_BY_KEY["vqa"]).set_index(RUN_ID)
    col = "vqa_rad/closed_accuracy Δ"
    assert math.isnan(frame.loc["fake-sub-pending", col])  # names a run that is not approved: no Δ
    assert math.isnan(frame.loc["fake-sub-other", col])  # an approved run of other weights: no Δ
    assert frame.loc["fake-sub-good", col] == 0.0 and frame.loc["fake-dpo-0", col] == 10.0
    pending = provenance_lines(board, board.run("fake-sub-pending"))
    assert "fake-rogue-base, which is not an approved run on this board: no Δ" in pending[1]
    other_lines = provenance_lines(board, board.run("fake-sub-other"))
    assert "evaluated 'fake-other@fedcba9876543210', not this run's base model" in other_lines[1]
    assert "base_run: verified (verified by the leaderboard)" in provenance_lines(board, board.run("fake-sub-good"))
    assert "nothing self-declared" in provenance_lines(board, board.run("fake-dpo-0"))[-1]  # no record: local run
    methods = method_deltas(board, "closed_accuracy").set_index("Run IDs")
    assert methods.loc["fake-sub-pending", "Effect"] == "no base run"
    assert math.isnan(methods.loc["fake-sub-pending", "Mean Δ closed_accuracy"])


def test_methods_rows_per_setting_name_their_seeds_and_runs(tmp_path):
    store = _partial_store(tmp_path)
    store.add_run(*_trained("fake-dpo-2", "dpo", 2, vqa_rad_closed_accuracy=0.58, vqa_rad_open_recall=0.31))
    store.add_run(*_trained("fake-dpo-lr", "dpo", 0, lr=1e-4, vqa_rad_closed_accuracy=0.61))  # another setting
    frame = method_deltas(Board.from_store(store), "closed_accuracy")
    dpo = frame[(frame["Method"] == "dpo") & (frame["Setting"] == "lr=1e-05")].iloc[0]
    assert dpo["Seeds"] == "0, 1, 2" and dpo["Run IDs"] == "fake-dpo-0, fake-dpo-1, fake-dpo-2" and dpo["Runs"] == 3
    assert dpo["Mean Δ closed_accuracy"] == round((10 + 6 - 2) / 3, 2)
    assert dpo["sd"] == round(math.sqrt(((10 - 14 / 3) ** 2 + (6 - 14 / 3) ** 2 + (-2 - 14 / 3) ** 2) / 2), 2)
    assert dpo["Range"] == "[-2.00, +10.00]" and dpo["Effect"] == "better in 2 of 3 seeds"
    assert dpo[TEST_SET] == "partial (limit 50)" and dpo["Mean closed_accuracy"] == round((70 + 66 + 58) / 3, 2)
    other = frame[(frame["Method"] == "dpo") & (frame["Setting"] == "lr=0.0001")].iloc[0]
    assert other["Run IDs"] == "fake-dpo-lr"  # a learning rate is a setting, never averaged as a seed
    from leaderboard.method_table import forest_rows

    rows = {r["label"]: r for r in forest_rows(frame, "closed_accuracy")}
    assert rows["dpo lr=1e-05 (partial)"]["hollow"] and (rows["dpo lr=1e-05 (partial)"]["low"], rows[
        "dpo lr=1e-05 (partial)"]["high"]) == (-2.0, 10.0)


def test_model_card_columns_links_and_filters(tmp_path):
    store = _partial_store(tmp_path)
    card = {"model_url": "https://example.org/fake-card", "params": 7_000_000_000, "precision": "bf16",
            "license": "mit"}
    store.add_run(RunRecord(model="fake-carded", source="submission", run_id="fake-carded", config={"card": card}),
                  _rows(vqa_rad_closed_accuracy=0.5))
    store.add_run(RunRecord(model="fake-org/fake-hub-model", source="submission", run_id="fake-hub",
                            config={"card": {"params": "lots"}}), _rows(vqa_rad_closed_accuracy=0.4))
    board = Board.from_store(store)
    frame = wide_table(board, TAB_BY_KEY["vqa"]).set_index(RUN_ID)
    carded = frame.loc["fake-carded"]
    assert (carded[PARAMS], carded[PRECISION], carded[LICENSE], carded[LINK]) == (
        7.0, "bf16", "mit", "https://example.org/fake-card")
    assert frame.loc["fake-hub", LINK] == "https://huggingface.co/fake-org/fake-hub-model"  # a Hub id links
    assert math.isnan(frame.loc["fake-hub", PARAMS])  # a malformed stored value is blank, never an error
    assert frame.loc["fake-dpo-0", PRECISION] == "" and frame.loc["fake-dpo-0", LINK] == ""
    opts = choices(board)
    assert opts["sizes"] == ["3B-10B", "unknown"] and opts["licenses"] == ["mit", "unknown"]
    assert list(wide_table(board, TAB_BY_KEY["vqa"], Filters(sizes=["3B-10B"]))[RUN_ID]) == ["fake-carded"]
    assert list(wide_table(board, TAB_BY_KEY["vqa"], Filters(licenses=["mit"]))[RUN_ID]) == ["fake-carded"]
    assert "fake-carded" not in set(wide_table(board, TAB_BY_KEY["vqa"], Filters(precisions=["unknown"]))[RUN_ID])

    from leaderboard.app import _frame_update

    shown = _frame_update(wide_table(board, TAB_BY_KEY["vqa"]), board)
    links = [v for v in shown["value"].data["Link"] if v]
    assert sorted(links) == ["[card](https://example.org/fake-card)",
                             "[🤗 Hub](https://huggingface.co/fake-org/fake-hub-model)"]
    assert shown["datatype"][list(shown["headers"]).index("Link")] == "markdown"


def test_about_cites_the_harness_benchmarks_and_methods_and_takes_n_from_the_registry(tmp_path):
    from harness.tasks import get_task
    from leaderboard.app import about_markdown
    from leaderboard.data import benchmark_cards

    board = Board.from_store(_partial_store(tmp_path))
    board.cards = benchmark_cards(board.results)
    cards = {c["task"]: c for c in board.cards}
    assert cards["vqa_rad"]["test_n"] == get_task("vqa_rad").expected_size("test") == 451  # not 272 closed ones
    text = about_markdown(board)
    assert "test n: 451 (from the official split)" in text
    harness = text.split("```bibtex\n", 1)[1].split("```", 1)[0]
    assert "@software{medpo_harness" in harness and "author" in harness and "version       = {0.1.0}" in harness
    assert "@misc{vqa_rad," in text and "author        = {Lau and Gayen and Ben Abacha and Demner-Fushman}" in text
    assert "@misc{mmedpo," in text and "eprint        = {2412.06141}" in text
    models = [line for line in text.splitlines() if line.startswith(f"| {BASE}+dpo ")]
    assert len(models) == 2 and all("fake-dpo-" in line and "fake-base-run" in line for line in models)
    assert "| 0 | fake-dpo-0 |" in models[1] + models[0]  # seed and run id on each row


def test_an_empty_store_or_no_study_renders_without_an_error(tmp_path):
    import gradio as gr

    from leaderboard.app import _frame_update, about_markdown, render_tab, updated_line
    from leaderboard.data import study_table

    board = Board.from_store(ResultsStore(tmp_path / "empty.sqlite"))
    for i in range(3):
        frame, html = render_tab(board, i, Filters(), None, AVERAGE, "best first", False, True)
        assert frame.empty and "No results to plot" in html
    assert method_deltas(board, "closed_accuracy").empty and updated_line(board) == "No approved runs yet."
    assert "no runs yet" in about_markdown(board)
    update = _frame_update(study_table(board, {"records": []}))  # what the Studies tab shows with no study
    gr.Dataframe(value=update["value"], headers=update["headers"], datatype=update["datatype"])  # Gradio accepts it


def test_a_snapshot_keeps_test_sets_settings_and_citations_without_the_harness(tmp_path):
    store = _partial_store(tmp_path)
    board = Board.from_store(store)
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(board.to_snapshot()), "utf-8")
    text = path.read_text()
    assert "/somewhere" not in text and "run_name" not in text  # machine details stay home
    again = Board.from_snapshot(path)
    assert all(run["test_set"] == "limit 50" for run in again.runs)  # marked without the harness's data records
    tab = TAB_BY_KEY["vqa"]
    assert wide_table(again, tab).equals(wide_table(board, tab))
    assert method_deltas(again, "closed_accuracy").equals(method_deltas(board, "closed_accuracy"))
    assert again.harness_version == board.harness_version
