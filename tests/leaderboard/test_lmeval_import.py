"""lm-eval imports on the leaderboard: pending until approved, intervals from samples, --limit marked, no twins."""

from __future__ import annotations

import json
import math

import pytest

from harness.cli import main
from harness.errors import DataError
from harness.results.store import ResultsStore


def _lm_eval_output(folder, limit=10):
    folder.mkdir()
    hits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    payload = {"results": {"vqa_rad_closed": {"alias": "vqa_rad_closed", "closed_accuracy,none": sum(hits) / 10,
                                              "closed_accuracy_stderr,none": "N/A"}},
               "configs": {"vqa_rad_closed": {"metadata": {"harness_task": "vqa_rad"}}},
               "higher_is_better": {"vqa_rad_closed": {"closed_accuracy": True}},
               "n-samples": {"vqa_rad_closed": {"original": 272, "effective": 10}},
               "config": {"model": "hf-multimodal", "model_args": {"pretrained": "org/fake-model"}, "limit": limit}}
    path = folder / "results_2025-01-01T00-00-00.json"
    path.write_text(json.dumps(payload), "utf-8")
    samples = [{"doc_id": i, "doc": {"id": f"q{i}", "question": "q?", "answer": "yes", "answer_type": "closed"},
                "filtered_resps": ["yes" if h else "no"], "closed_accuracy": h} for i, h in enumerate(hits)]
    (folder / "samples_vqa_rad_closed_2025-01-01T00-00-00.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in samples), "utf-8")
    return path


def test_lm_eval_import_is_pending_has_an_interval_refuses_twins_and_is_marked_partial(tmp_path, capsys):
    from harness.lmeval.importer import import_lm_eval
    from leaderboard.data import TAB_BY_KEY, TEST_SET, Board, wide_table

    store = ResultsStore(tmp_path / "s.sqlite")
    path = _lm_eval_output(tmp_path / "out")
    run_id = import_lm_eval(path, store=store)
    run = store.get_run(run_id)
    assert run["status"] == "pending"  # a maintainer reviews it like any submission
    (row,) = store.results(run_ids=[run_id])
    assert row["value"] == 0.7 and row["ci_low"] is not None and row["ci_low"] < 0.7 < row["ci_high"]
    assert row["n"] == 10
    with pytest.raises(DataError, match=f"already imported as run {run_id}"):
        import_lm_eval(path, store=store)
    assert main(["import", "lm-eval", str(path), "--store", str(store.path)]) == 2
    assert "already imported" in capsys.readouterr().err and len(store.runs()) == 1

    board = Board.from_store(store)
    assert wide_table(board, TAB_BY_KEY["vqa"]).empty  # not on the board before approval
    store.set_status(run_id, "approved")
    frame = wide_table(Board.from_store(store), TAB_BY_KEY["vqa"])
    assert frame.loc[0, TEST_SET] == "partial (limit 10)" and math.isnan(frame.loc[0, "Rank"])
