from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

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


def _one_line_error(capsys, *args) -> str:
    """Run ``harness results`` with ``args``: exit code 2 and a single ``error:`` line on stderr."""
    assert main(["results", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: results store ") and "\n" not in err, err
    assert "Traceback" not in err and "sqlite3" not in err
    return err


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path, capsys):
    not_db = tmp_path / "notes.sqlite"
    not_db.write_text("these are notes, not a database\n" * 50)
    err = _one_line_error(capsys, "--store", str(not_db))
    assert str(not_db) in err and "not a results database" in err and "move the file away" in err
    assert not_db.read_text().startswith("these are notes")  # left as it was


def test_a_folder_as_the_store_is_a_one_line_error(tmp_path, capsys):
    err = _one_line_error(capsys, "--store", str(tmp_path))
    assert "is a folder" in err and str(tmp_path / "results.sqlite") in err


@contextmanager
def _read_only(*paths: Path):
    """Make ``paths`` read-only for this process: chmod for a normal user; for root (whom permissions do
    not stop) the immutable attribute, where the file system and capabilities allow it."""
    if os.geteuid() != 0:
        modes = [p.stat().st_mode for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in zip(paths, modes):
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    done = []
    try:
        for p in paths:
            if subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode != 0:
                pytest.skip("running as root and chattr +i is refused here: cannot make a file read-only")
            done.append(p)
        yield
    finally:
        for p in done:
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)


def test_a_read_only_store_is_a_one_line_error(tmp_path, capsys):
    import sqlite3

    home = tmp_path / "home"
    home.mkdir()
    db = home / "results.sqlite"
    conn = sqlite3.connect(db)  # a database the store has not opened yet: it must still switch it to WAL
    conn.execute("CREATE TABLE notes (a)")
    conn.commit()
    conn.close()
    with _read_only(db):
        err = _one_line_error(capsys, "--store", str(db))
    assert str(db) in err and "read-only" in err and "writable" in err


def test_a_store_in_a_read_only_harness_home_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    with _read_only(home):
        err = _one_line_error(capsys)
    assert str(home / "results.sqlite") in err and "folder is not writable" in err


def test_a_store_locked_by_another_writer_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import sqlite3

    from harness.results import store as store_module

    db = _store(tmp_path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        err = _one_line_error(capsys, "approve", "20250101-000000-aaaaaa", "--store", str(db))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "locked by another process" in err and "retry" in err
    assert main(["results", "approve", "20250101-000000-aaaaaa", "--store", str(db)]) == 0  # free again


@pytest.mark.parametrize("argv", [["--store", "{db}", "approve", "20250101"], ["approve", "20250101", "--store", "{db}"]])
def test_the_store_flag_works_before_or_after_the_action(tmp_path, capsys, argv):
    db = _store(tmp_path)
    assert main(["results", *[a.format(db=db) for a in argv]]) == 0
    assert ResultsStore(db).get_run("20250101")["status"] == "approved"
    assert not (Path(os.environ["HARNESS_HOME"]) / "results.sqlite").exists() or \
        not ResultsStore().runs(run_ids=["20250101-000000-aaaaaa"])  # not the default store
