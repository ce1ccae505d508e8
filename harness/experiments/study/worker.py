"""The worker side of a study run on Ray or Slurm: one run, written only to its own run folder.

A worker runs ``harness.experiments.pipeline.run`` exactly as the sequential study does (pairs, training, evaluation),
with one difference: the run is "stored" into its own run folder (:class:`RunFolderStore`), never into the
SQLite results store, which only the coordinator writes (a SQLite file on a network filesystem shared by
many writers is a corrupt file waiting to happen). The folder then holds, written atomically:

- ``study_record.json``: the store row and result rows the evaluation produced, for the coordinator to
  ingest (``ingest``);
- ``study_outcome.json``, written last: the run is complete (pairs used, base run compared with).

A complete folder is never trained again: a rerun of the study (any executor) ingests it as it is. While a
worker runs, opening the results store is refused (an audit hook on ``sqlite3.connect``), so a code path
that would write the store from a worker fails loudly instead of writing it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.results.store import ResultRow, ResultsStore, RunRecord

log = logging.getLogger(__name__)

RECORD = "study_record.json"
OUTCOME = "study_outcome.json"
# what a worker on another node needs of the coordinator's environment: where the cache and the data are
_ENV_PREFIXES = ("HARNESS_HOME", "HARNESS_DATA")


@dataclass
class Job:
    """One run of a study, as the coordinator hands it to a worker (pickled by Ray or submitit)."""

    key: str  # "dpo|seed 0": how the study names the run
    run_id: str
    config: Any  # harness.experiments.pipeline.RunConfig
    base: dict[str, Any]  # the base evaluation's store row (the coordinator evaluated it before the fan-out)
    base_results: list[dict[str, Any]]
    log_path: str  # the run's log, appended per attempt (studies/<id>/logs/<run_id>.log)
    guarded: list[str] = field(default_factory=list)  # the results store's path(s): never opened by a worker
    env: dict[str, str] = field(default_factory=dict)


def job_environment() -> dict[str, str]:
    """``HARNESS_HOME`` and the data folders of this process, for workers started elsewhere."""
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}


def run_job(job: Job) -> dict[str, Any]:
    """Run (or resume) one study run in this process; returns its outcome (also in ``study_outcome.json``)."""
    from harness.core.io import write_json
    from harness.core.paths import run_dir
    from harness.experiments import pipeline

    with _environment(job.env), _run_log(job), refusing_store(job.guarded):
        folder = run_dir(job.run_id)
        if complete(folder, job.run_id):
            log.info("run %s: already complete, nothing to do", job.run_id)
            return read_outcome(folder)
        store = RunFolderStore(job.run_id, job.base, job.base_results)
        outcome = pipeline.run(job.config, run_id=job.run_id, store=store)
        summary = {"run_id": job.run_id, "key": job.key, "pairs": outcome.pairs, "base_run_id": outcome.base_run_id}
        write_json(folder / OUTCOME, summary)
        log.info("run %s (%s): complete", job.run_id, job.key)
        return summary


def complete(folder: Path, run_id: str) -> bool:
    """Whether ``folder`` holds a finished worker run of ``run_id`` (its record and outcome)."""
    if not (folder / RECORD).is_file() or not (folder / OUTCOME).is_file():
        return False
    try:
        return read_outcome(folder).get("run_id") == run_id
    except (OSError, ValueError):
        return False


def read_outcome(folder: Path) -> dict[str, Any]:
    return json.loads((folder / OUTCOME).read_text(encoding="utf-8"))


def ingest(store: ResultsStore, folder: Path) -> dict[str, Any]:
    """Store a complete run folder's run and results (the coordinator's job); returns its outcome.

    Predictions are read from the run folder as the coordinator sees it (a shared filesystem may be mounted
    elsewhere on the worker's node)."""
    data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    run = RunRecord(**data["run"])
    recorded = Path(run.predictions_dir or folder)
    inside = recorded.parts[recorded.parts.index(folder.name) + 1:] if folder.name in recorded.parts else ()
    run.predictions_dir = str(folder.joinpath(*inside))
    store.add_run(run, [ResultRow(**row) for row in data["results"]], replace=True)
    return read_outcome(folder)


class RunFolderStore(ResultsStore):
    """The results store as one worker run sees it: the base evaluation (handed over by the coordinator) and
    its own run, kept in ``<run folder>/study_record.json``. It never opens SQLite."""

    def __init__(self, run_id: str, base: dict[str, Any], base_results: list[dict[str, Any]]):
        from harness.core.paths import run_dir

        self.run_id = run_id
        self.path = run_dir(run_id) / RECORD
        self._base, self._base_results = base, base_results

    def _connect(self):
        raise HarnessError("a study worker never opens the results store: the coordinator ingests its run folder")

    def add_run(self, run: RunRecord, results, *, replace: bool = False, submitter: str | None = None) -> str:
        from harness.core.io import write_json

        if run.run_id != self.run_id:
            raise HarnessError(f"study worker of run {self.run_id} was asked to store run {run.run_id} (the base "
                               "evaluation is the coordinator's, before the fan-out)")
        write_json(self.path, {"run": asdict(run), "results": [asdict(r) for r in results]})
        return run.run_id

    def _own(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        if not self.path.is_file():
            return None, []
        data = json.loads(self.path.read_text(encoding="utf-8"))
        row = {**data["run"], "review": "candidate"}
        identity = {k: row[k] for k in ("run_id", "model", "base_model", "method", "model_type", "created_at",
                                         "status", "source")}
        return row, [{**r, **identity} for r in data["results"]]

    def runs(self, *, status: str | None = None, run_ids=None) -> list[dict[str, Any]]:
        own, _ = self._own()
        rows = [dict(self._base), *([own] if own else [])]
        return [r for r in rows if (status is None or r.get("status") == status)
                and (not run_ids or r["run_id"] in run_ids)]

    def results(self, *, run_ids=None, tasks=None, status=None) -> list[dict[str, Any]]:
        _, own = self._own()
        rows = [*self._base_results, *own]
        return [r for r in rows if (not run_ids or r["run_id"] in run_ids) and (not tasks or r["task"] in tasks)
                and (status is None or r.get("status") == status)]


# --- the store guard: while a worker runs, no sqlite3.connect to the results store -----------------------------

_GUARDED: list[str] = []
_HOOKED = False


def _audit(event: str, args: tuple) -> None:
    if event != "sqlite3.connect" or not _GUARDED or not args:
        return
    try:
        target = os.path.realpath(os.fsdecode(args[0]))
    except TypeError:
        return
    if target in _GUARDED:
        raise HarnessError(f"a study worker tried to open the results store {Path(target).name}: only the "
                           "coordinator writes it (the worker's run goes to its run folder)")


@contextlib.contextmanager
def refusing_store(paths: list[str]) -> Iterator[None]:
    """Within the block, ``sqlite3.connect`` to any of ``paths`` raises (an audit hook, installed once per
    process; hooks cannot be removed, so outside the block it lets everything through)."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    added = [os.path.realpath(p) for p in paths]
    _GUARDED.extend(added)
    try:
        yield
    finally:
        for path in added:
            _GUARDED.remove(path)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _run_log(job: Job) -> Iterator[None]:
    """Everything the run logs, and its traceback if it fails, appended to ``job.log_path``."""
    import traceback
    from datetime import datetime, timezone

    from harness.core.secrets import redact_text

    path = Path(job.log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    log.info("run %s (%s): attempt started %s on %s", job.run_id, job.key, stamp, _host())
    try:
        yield
    except BaseException as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        handler.stream.write(redact_text(text))
        handler.flush()
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _host() -> str:
    import socket

    return socket.gethostname()


def log_tail(path: str | Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a run's log ("(no log)" when it has none)."""
    path = Path(path)
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
