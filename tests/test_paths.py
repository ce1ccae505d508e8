"""One process per run id (and per study id): ``harness.core.paths.run_lock`` and where the commands take it.

The other process is a real one (a helper holding the lock until its stdin closes), since an ``flock``
only conflicts between open files, and the point is what a second command sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

import harness.experiments.pipeline as pipeline
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.paths import run_lock, runs_dir, study_lock

HOLD = """
import sys
from harness.core.paths import run_lock, study_lock
lock = study_lock if sys.argv[1] == "study" else run_lock
with lock(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    return tmp_path / "home"


@contextmanager
def held_elsewhere(name: str, kind: str = "run"):
    """Another process holding run (or study) ``name`` until the block ends; yields it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, kind, name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
        proc.wait(timeout=30)


def test_a_run_held_by_another_process_is_refused_with_its_pid(home):
    with held_elsewhere("twin") as holder:
        with pytest.raises(HarnessError, match=rf"^run 'twin' is in use by another process \(pid {holder.pid}\)"):
            with run_lock("twin"):
                pass
        with run_lock("other"):  # other ids are free
            pass
    with run_lock("twin") as path:  # released when the holder finished
        assert path.parent == runs_dir() / ".locks"


def test_a_killed_holder_leaves_no_lock_behind(home):
    with held_elsewhere("crashed") as holder:
        holder.kill()
        holder.wait(timeout=30)
        with run_lock("crashed"):
            pass


def test_the_lock_is_reentrant_within_a_process_and_released_after(home):
    probe = [sys.executable, "-c", "from harness.core.paths import run_lock\nwith run_lock('mine'): pass"]
    with run_lock("mine"):
        with run_lock("mine"):  # harness eval takes it before the model loads, then the engine again
            pass
        refused = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "run 'mine' is in use by another process" in refused.stderr
    assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def test_a_bad_id_is_refused_before_any_lock_file(home):
    with pytest.raises(HarnessError, match="a run id is"):
        with run_lock("../escape"):
            pass
    assert not (home / "escape.lock").exists()


def test_harness_run_on_a_busy_id_exits_2_at_once_before_any_model_loads(home, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")

    def no_model(*args, **kwargs):
        raise AssertionError("the second run loaded a model")

    monkeypatch.setattr(pipeline, "resolve_base_model", no_model)
    work = runs_dir() / "same" / "train"
    work.mkdir(parents=True)
    (work / "checkpoint").write_text("the first run's work")
    argv = ["run", "--method", "dpo", "--model", str(folder), "--tasks", "synth_vqa", "--run-id", "same"]
    with held_elsewhere("same") as holder:
        start = time.perf_counter()
        assert main(argv) == 2
        elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert err == (f"error: run 'same' is in use by another process (pid {holder.pid}): wait for it to finish, "
                   "or pick another id")
    assert elapsed < 10
    assert (work / "checkpoint").read_text() == "the first run's work"  # the first run's folder is untouched


def test_a_study_runs_in_one_process_at_a_time(home):
    from harness.experiments.study import StudyConfig, run_study

    with held_elsewhere("st", kind="study") as holder:
        with pytest.raises(HarnessError, match=rf"^study 'st' is in use by another process \(pid {holder.pid}\)"):
            run_study(StudyConfig(methods="dpo"), study_id="st", progress=False)
    assert not (home / "studies" / "st").exists()  # refused before the study's state was written
    with study_lock("st"), run_lock("st"):  # studies and runs are separate names
        pass
