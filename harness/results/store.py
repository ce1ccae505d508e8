"""The results store: SQLite under ``HARNESS_HOME`` (``--store`` or ``HARNESS_STORE`` to move it).

One row per run in ``runs`` (model, base model, method, config, package versions, git commit, seed,
status) and one row per run, task and metric in ``results`` (value, bootstrap interval, n). Per-sample
predictions live as JSON Lines under the run directory named in ``runs.predictions_dir``. A run and its
results are written in one transaction, so readers never see half a run; WAL mode and a busy timeout let
concurrent writers (submissions) queue instead of failing. A store that cannot be used (not a database, a
folder, read-only, locked past the timeout) is a one-line ``HarnessError`` naming the file and what to do.

Stored JSON is standard JSON (``harness.core.io.standard_json``: a NaN or infinite float in a config is kept as the
text ``"nan"``/``"inf"``), and a stored config that does not parse reads as ``{}`` with a warning, so no row
can make a query or a page fail. Who submitted a leaderboard run (a keyed hash, ``leaderboard.submit``) is
kept in its own ``submitters`` table, which no run listing, export or snapshot reads.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import standard_json

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    model TEXT NOT NULL,
    base_model TEXT,
    method TEXT,
    model_type TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    versions TEXT NOT NULL DEFAULT '{}',
    harness_version TEXT,
    git_commit TEXT,
    seed INTEGER,
    status TEXT NOT NULL DEFAULT 'approved',
    source TEXT NOT NULL DEFAULT 'local',
    predictions_dir TEXT,
    fingerprint TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    task_version TEXT,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    higher_is_better INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, task, metric)
);
CREATE INDEX IF NOT EXISTS results_task ON results(task, metric);
CREATE TABLE IF NOT EXISTS submitters (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    submitter TEXT NOT NULL,
    submitted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submitters_key ON submitters(submitter, submitted_at);
CREATE TABLE IF NOT EXISTS pins (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    pinned_at TEXT NOT NULL
);
"""
# The regression gate's review state, separate from ``status`` (leaderboard moderation): every run starts a
# candidate; ``harness results approve`` makes it an approved baseline. Added to older databases on open.
REVIEW_STATES = ("candidate", "approved")
_MIGRATIONS = (("review", "ALTER TABLE runs ADD COLUMN review TEXT NOT NULL DEFAULT 'candidate'"),)
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another one before the store counts as locked


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus six random hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


@dataclass
class RunRecord:
    model: str
    base_model: str | None = None
    method: str | None = None
    model_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    harness_version: str | None = None
    git_commit: str | None = None
    seed: int | None = None
    status: str = "approved"
    source: str = "local"
    predictions_dir: str | None = None
    fingerprint: str | None = None
    run_id: str = field(default_factory=new_run_id)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


@dataclass
class ResultRow:
    task: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    higher_is_better: bool = True
    task_version: str | None = None


def default_store_path() -> Path:
    from harness.core.paths import harness_home

    return Path(os.environ.get("HARNESS_STORE") or harness_home() / "results.sqlite")


def store_error(path: Path, exc: sqlite3.Error) -> HarnessError:
    """A one-line error for a store SQLite cannot use: which file, what is wrong, what to do."""
    text = " ".join(str(exc).split())
    where = "--store or HARNESS_STORE"
    if path.is_dir():
        problem = f"is a folder, not a results database: point {where} at a file (e.g. {path / 'results.sqlite'})"
    elif "not a database" in text or "malformed" in text or "encrypted" in text:
        problem = (f"is not a results database (SQLite: {text}): point {where} at a results database, or move "
                   "the file away to start a new one")
    elif "readonly" in text or "read-only" in text:
        problem = (f"is read-only (SQLite: {text}): make the file and its folder writable (the store writes "
                   f"its -wal and -shm files beside it), or point {where} at a writable place")
    elif "locked" in text or "busy" in text:
        problem = (f"is locked by another process (waited {BUSY_TIMEOUT_S:g} s): retry when it has finished, "
                   f"or point {where} at another store")
    elif "unable to open" in text:
        folder = path.parent
        why = "its folder does not exist" if not folder.is_dir() else \
            "its folder is not writable" if not os.access(folder, os.W_OK) else "SQLite cannot open it"
        problem = f"cannot be opened ({why}): point {where} at a writable place"
    else:
        problem = f"SQLite failed: {text}"
    return HarnessError(f"results store {path}: {problem}")


class ResultsStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        from harness.core.paths import make_dir

        make_dir(self.path.parent, "results store folder")
        with self._connection() as conn:
            conn.executescript(SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, statement in _MIGRATIONS:
                if column not in columns:
                    conn.execute(statement)
            _standardise_configs(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, closed after it; SQLite's errors become one-line errors."""
        try:
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def add_run(self, run: RunRecord, results: Iterable[ResultRow], *, replace: bool = False,
                submitter: str | None = None) -> str:
        """Insert a run and its results atomically; a duplicate fingerprint is rejected.

        With ``replace`` an existing run of the same id is swapped out in the same transaction (a resumed
        or re-scored evaluation), so readers see either the old run or the new one, never neither.
        ``submitter`` (a leaderboard submission's keyed submitter hash) goes to the ``submitters`` table.
        """
        from harness.core.secrets import redact

        rows = list(results)
        data = redact(asdict(run))  # no API key reaches the store, its exports or the Space
        data["config"] = _config_json(data["config"])
        data["versions"] = standard_json(run.versions, sort_keys=True)
        with self._connection() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                if replace:
                    conn.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
                columns = ", ".join(data)
                conn.execute(f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' for _ in data)})",
                             list(data.values()))
                conn.executemany(
                    "INSERT INTO results (run_id, task, task_version, metric, value, ci_low, ci_high, n, "
                    "higher_is_better) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (run.run_id, r.task, r.task_version, r.metric, float(r.value), r.ci_low, r.ci_high, r.n,
                         int(r.higher_is_better))
                        for r in rows
                    ],
                )
                if submitter is not None:
                    conn.execute("INSERT INTO submitters (run_id, submitter, submitted_at) VALUES (?, ?, ?)",
                                 (run.run_id, submitter, run.created_at))
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                _rollback(conn)
                if "fingerprint" in str(exc):
                    raise HarnessError(f"duplicate run: a run with the same content is already stored "
                                       f"({run.fingerprint})") from None
                raise HarnessError(f"could not store run {run.run_id}: {exc}") from None
            except BaseException:
                _rollback(conn)  # when BEGIN itself failed (locked) there is nothing to roll back
                raise
        return run.run_id

    def submissions_since(self, submitter: str, since: str) -> int:
        """Runs stored for ``submitter`` (a submitter hash) at or after ``since`` (ISO time), whatever their
        status now."""
        with self._connection() as conn:
            return conn.execute("SELECT COUNT(*) FROM submitters WHERE submitter = ? AND submitted_at >= ?",
                                (submitter, since)).fetchone()[0]

    def set_status(self, run_id: str, status: str) -> None:
        with self._connection() as conn:
            updated = conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id)).rowcount
        if not updated:
            raise HarnessError(f"no run '{run_id}' in {self.path.name}")

    def approve(self, run_id: str) -> str:
        """Mark a run as an approved baseline for the regression gate (its review state); returns the full id."""
        run_id = self.get_run(run_id)["run_id"]
        with self._connection() as conn:
            conn.execute("UPDATE runs SET review = 'approved' WHERE run_id = ?", (run_id,))
        return run_id

    def pin(self, run_id: str, name: str) -> str:
        """Name an approved run (``harness regress --baseline NAME``); a name already pinned moves to this run."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise HarnessError(f"pin name '{name}' must be letters, digits, '-', '_' or '.'")
        run = self.get_run(run_id)
        if run.get("review") != "approved":
            raise HarnessError(f"run '{run['run_id']}' is a candidate: approve it first (harness results approve "
                               f"{run['run_id']})")
        with self._connection() as conn:
            conn.execute("INSERT INTO pins (name, run_id, pinned_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                         "SET run_id = excluded.run_id, pinned_at = excluded.pinned_at",
                         (name, run["run_id"], datetime.now(timezone.utc).isoformat(timespec="seconds")))
        return run["run_id"]

    def pins(self) -> dict[str, dict[str, str]]:
        with self._connection() as conn:
            return {r["name"]: {"run_id": r["run_id"], "pinned_at": r["pinned_at"]}
                    for r in conn.execute("SELECT * FROM pins ORDER BY name")}

    def baselines(self) -> list[dict[str, Any]]:
        """Approved runs, each with the names pinned to it."""
        pinned: dict[str, list[str]] = {}
        for name, pin in self.pins().items():
            pinned.setdefault(pin["run_id"], []).append(name)
        return [{**run, "pins": pinned.get(run["run_id"], [])} for run in self.runs() if run.get("review") == "approved"]

    def resolve(self, name_or_id: str) -> str:
        """A pin name's run id, else the run id (or unique prefix) itself."""
        pin = self.pins().get(name_or_id)
        return pin["run_id"] if pin else self.get_run(name_or_id)["run_id"]

    def runs(self, *, status: str | None = None, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        query, params = "SELECT * FROM runs WHERE 1=1", []
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if run_ids:
            query += f" AND run_id IN ({', '.join('?' for _ in run_ids)})"
            params.extend(run_ids)
        with self._connection() as conn:
            rows = [dict(r) for r in conn.execute(query + " ORDER BY created_at, run_id", params)]
        for row in rows:
            row["config"] = _stored_json(row["config"], row["run_id"], "config")
            row["config"].pop(LEGACY_SUBMITTER_KEY, None)
            row["versions"] = _stored_json(row["versions"], row["run_id"], "versions")
        return rows

    def get_run(self, run_id: str) -> dict[str, Any]:
        rows = self.runs(run_ids=[run_id])
        if not rows:
            matches = [r["run_id"] for r in self.runs() if r["run_id"].startswith(run_id)]
            if len(matches) == 1:
                return self.runs(run_ids=matches)[0]
            raise HarnessError(f"no run '{run_id}' in the results store {self.path.name}")
        return rows[0]

    def results(
        self,
        *,
        run_ids: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Result rows joined with their run's identity columns."""
        query = (
            "SELECT r.*, u.model, u.base_model, u.method, u.model_type, u.created_at, u.status, u.source"
            " FROM results r JOIN runs u USING (run_id) WHERE 1=1"
        )
        params: list[Any] = []
        if run_ids:
            query += f" AND r.run_id IN ({', '.join('?' for _ in run_ids)})"
            params.extend(run_ids)
        if tasks:
            query += f" AND r.task IN ({', '.join('?' for _ in tasks)})"
            params.extend(tasks)
        if status is not None:
            query += " AND u.status = ?"
            params.append(status)
        with self._connection() as conn:
            rows = [dict(r) for r in conn.execute(query + " ORDER BY u.created_at, r.run_id, r.task, r.metric", params)]
        for row in rows:
            row["higher_is_better"] = bool(row["higher_is_better"])
        return rows

    def integrity_check(self) -> list[str]:
        """Problems found (empty when the store is sound): SQLite's own check plus orphan results."""
        with self._connection() as conn:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            orphans = conn.execute(
                "SELECT COUNT(*) FROM results WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()[0]
            problems += [f"{r[0]}: {r[2]}" for r in conn.execute("PRAGMA foreign_key_check")]
        if orphans:
            problems.append(f"{orphans} result rows without a run")
        return problems


LEGACY_SUBMITTER_KEY = "submitted_by"  # where older stores kept the submitter hash, inside the config


def _config_json(config: dict[str, Any]) -> str:
    return standard_json(config, replace=repr, sort_keys=True, default=str)


def _stored_json(text: Any, run_id: str, column: str) -> dict[str, Any]:
    """A stored JSON object column; one that does not parse (or is not an object) reads as ``{}``."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("run %s: its stored %s is not a JSON object; shown as empty", run_id, column)
        return {}
    return value


def _standardise_configs(conn: sqlite3.Connection) -> None:
    """Rewrite configs stored by older versions: non-standard JSON (``Infinity``, ``NaN``) and the submitter
    hash kept inside the config (moved to ``submitters`` with the run's creation time)."""
    rows = conn.execute("SELECT run_id, created_at, config FROM runs WHERE config GLOB '*Infinity*' OR "
                        "config GLOB '*NaN*' OR config GLOB '*\"submitted_by\"*'").fetchall()
    for run_id, created_at, text in rows:
        try:
            config = json.loads(text)
        except ValueError:
            continue
        if not isinstance(config, dict):
            continue
        submitter = config.pop(LEGACY_SUBMITTER_KEY, None)
        fixed = _config_json(config)
        if fixed != text:
            conn.execute("UPDATE runs SET config = ? WHERE run_id = ?", (fixed, run_id))
        if isinstance(submitter, str):
            conn.execute("INSERT OR IGNORE INTO submitters (run_id, submitter, submitted_at) VALUES (?, ?, ?)",
                         (run_id, submitter, created_at))


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
