from __future__ import annotations

import json

from harness.cli import main
from harness.results import ResultRow, ResultsStore, RunRecord


def _store(tmp_path):
    db = tmp_path / "r.sqlite"
    store = ResultsStore(db)
    store.add_run(RunRecord(model="a", run_id="20250101-000000-aaaaaa"), [ResultRow("t1", "m", 0.5), ResultRow("t2", "m", 0.1)])
    store.add_run(RunRecord(model="b", run_id="20250102-000000-bbbbbb"), [ResultRow("t1", "m", 0.7)])
    return db


def test_lists_runs_as_a_wide_table(tmp_path, capsys):
    db = _store(tmp_path)
    assert main(["results", "--store", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "t1/m" in lines[0] and "t2/m" in lines[0] and len(lines) == 4


def test_filters_and_json(tmp_path, capsys):
    db = _store(tmp_path)
    assert main(["results", "--store", str(db), "--tasks", "t1", "--runs", "20250102", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    assert {k: rows[0][k] for k in ("run_id", "model", "method", "t1/m")} == {
        "run_id": "20250102-000000-bbbbbb", "model": "b", "method": None, "t1/m": 0.7}


def test_export_and_unknown_run(tmp_path, capsys):
    db = _store(tmp_path)
    assert main(["results", "--store", str(db), "--export", str(tmp_path / "out.md")]) == 0
    assert (tmp_path / "out.md").read_text().count("\n") == 4
    assert main(["results", "--store", str(db), "--runs", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
