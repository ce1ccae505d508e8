"""Where the harness reads data and writes everything else.

``HARNESS_HOME`` (default ``~/.cache/harness``) holds the results store, cached models, preference pairs
and run directories. ``HARNESS_DATA`` (or ``--data-dir``) is the folder holding one sub-folder per dataset
(``vqa_rad/``, ``slake/``, ``iu_xray/``, ``mimic_cxr/``); ``HARNESS_DATA_<TASK>`` overrides one task's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from harness.core.errors import HarnessError

# A run id names a folder under HARNESS_HOME/runs: no separators, no "..", a bounded length.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_run_id(run_id: str | None) -> str | None:
    """``run_id`` unchanged when it is safe as a folder name; a one-line error otherwise."""
    if run_id is None:
        return None
    if not RUN_ID_PATTERN.match(str(run_id)) or ".." in str(run_id):
        shown = run_id if len(str(run_id)) <= 40 else f"{str(run_id)[:40]}... ({len(str(run_id))} characters)"
        raise HarnessError(f"--run-id {shown!r}: a run id is 1-64 letters, digits, '.', '_' or '-', starting with "
                           "a letter or digit (no '/' or '..')")
    return run_id


def make_dir(path: Path, what: str) -> Path:
    """``mkdir -p`` with a one-line error naming the folder and the variable or flag that chose it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from None
    return path


def harness_home() -> Path:
    home = Path(os.environ.get("HARNESS_HOME", Path.home() / ".cache" / "harness")).expanduser()
    return make_dir(home, "HARNESS_HOME")


def data_root(data_dir: str | Path | None = None) -> Path | None:
    """The data directory from the argument, else ``HARNESS_DATA``, else None."""
    value = data_dir if data_dir is not None else os.environ.get("HARNESS_DATA")
    return Path(value).expanduser() if value else None


def task_data_dir(task: str, folder: str, data_dir: str | Path | None = None) -> Path | None:
    """One task's folder: ``HARNESS_DATA_<TASK>`` if set, else ``<data root>/<folder>``."""
    override = os.environ.get(f"HARNESS_DATA_{task.upper()}")
    if override:
        return Path(override).expanduser()
    root = data_root(data_dir)
    return root / folder if root is not None else None


def runs_dir() -> Path:
    return make_dir(harness_home() / "runs", "runs folder")


def run_dir(run_id: str) -> Path:
    """``HARNESS_HOME/runs/<run_id>`` for a checked run id (the folder is not created)."""
    return runs_dir() / check_run_id(run_id)


def run_lock(run_id: str) -> AbstractContextManager[Path]:
    """Hold run ``run_id`` for this process (a context manager): a second process asking for the same run
    gets a one-line error naming the holder's pid instead of writing the same files. The lock is an
    exclusive ``flock`` on ``HARNESS_HOME/runs/.locks/<run_id>.lock``; the kernel releases it when the
    holder exits, however it exits, so a killed run never leaves it behind. Reentrant within a process."""
    folder = make_dir(runs_dir() / ".locks", "locks folder")
    return _exclusive(folder / f"{check_run_id(run_id)}.lock", f"run '{run_id}'")


def study_lock(study_id: str) -> AbstractContextManager[Path]:
    """Hold study ``study_id`` for this process, as :func:`run_lock` holds a run
    (``HARNESS_HOME/studies/.locks/<study_id>.lock``)."""
    folder = make_dir(harness_home() / "studies" / ".locks", "locks folder")
    return _exclusive(folder / f"{check_run_id(study_id)}.lock", f"study '{study_id}'")


_HELD: dict[Path, int] = {}  # lock files this process holds, with how many nested holders


@contextmanager
def _exclusive(path: Path, what: str) -> Iterator[Path]:
    key = path.resolve()
    if key in _HELD:  # held here already: harness eval takes it before the model loads, then the engine
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HarnessError(f"{what}: cannot open its lock file {path} ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise HarnessError(f"{what} is in use by another process{pid}: wait for it to finish, or pick "
                               "another id") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _HELD[key] = 1
        try:
            yield path
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # closing the file releases the lock
