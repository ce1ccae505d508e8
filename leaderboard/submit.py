"""Store a validated submission as pending; approve or reject it later.

Each run of a file is one ``ResultsStore.add_run`` transaction (``BEGIN IMMEDIATE`` under WAL with a busy
timeout), so concurrent submitters queue instead of corrupting the store, and the store's unique
fingerprint rejects a run whose content is already there even when two identical files race.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.errors import DataError, HarnessError
from harness.results.store import ResultsStore
from leaderboard.schema import MAX_BYTES, parse_bytes, validate

log = logging.getLogger(__name__)

STATUSES = ("approved", "pending", "rejected")
RUNS_PER_HOUR = 20  # per submitter; HARNESS_SUBMIT_LIMIT overrides (0 turns the limit off)
# the app's upload threads check and store under one lock, so simultaneous uploads cannot pass the limit
_RATE_LOCK = threading.Lock()


def submitter_key(identity: str) -> str:
    """What the store keeps about a submitter: a hash of their identity (an IP address or a user name)."""
    return "sha256:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def runs_per_hour() -> int:
    value = os.environ.get("HARNESS_SUBMIT_LIMIT", "")
    try:
        return int(value) if value.strip() else RUNS_PER_HOUR
    except ValueError:
        raise HarnessError(f"HARNESS_SUBMIT_LIMIT must be an integer, got {value!r}") from None


def recent_runs(store: ResultsStore, key: str, hours: float = 1.0) -> int:
    """Submitted runs stored for ``key`` in the last ``hours`` (whatever their status now)."""
    since = (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")
    conn = sqlite3.connect(store.path, timeout=30.0)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM runs WHERE source = 'submission' AND created_at >= ?"
            " AND json_extract(config, '$.submitted_by') = ?", (since, key)).fetchone()[0]
    finally:
        conn.close()


@dataclass
class SubmitOutcome:
    stored: list[str] = field(default_factory=list)  # run ids now pending
    rejected: list[str] = field(default_factory=list)  # one line per run that was not stored


def read_submission(path: str | Path) -> bytes:
    """The file's bytes, refusing anything over the size cap before reading it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DataError(path, f"file is {size:,} bytes; the limit is {MAX_BYTES:,}")
    with open(path, "rb") as handle:
        return handle.read(MAX_BYTES + 1)


def submit_bytes(data: bytes, store: ResultsStore, source: str = "submission", *,
                 submitter: str | None = None) -> SubmitOutcome:
    """Validate a whole file first (nothing is stored if any run is malformed), then store each run.

    With ``submitter`` (the app passes the visitor's address or user name) at most ``runs_per_hour()``
    runs per submitter are taken per hour; a file that would pass the limit is refused whole.
    """
    subs = validate(parse_bytes(data, source), source)
    if submitter is None:
        return _store_all(subs, store, source)
    with _RATE_LOCK:
        key = submitter_key(submitter)
        limit = runs_per_hour()
        if limit > 0:
            used = recent_runs(store, key)
            if used + len(subs) > limit:
                raise DataError(source, f"rate limit: {used} run(s) submitted in the last hour, at most {limit} "
                                        "per submitter per hour; try again later")
        for sub in subs:
            sub.run.config = {**sub.run.config, "submitted_by": key}
        return _store_all(subs, store, source)


def _store_all(subs: list, store: ResultsStore, source: str) -> SubmitOutcome:
    outcome = SubmitOutcome()
    for i, sub in enumerate(subs):
        try:
            outcome.stored.append(store.add_run(sub.run, sub.results))
        except HarnessError as exc:  # a duplicate fingerprint: the run is already on the board or pending
            outcome.rejected.append(f"{source}, record run {i}: {exc}")
    log.info("%s: %d run(s) pending, %d rejected", source, len(outcome.stored), len(outcome.rejected))
    return outcome


def submit_file(path: str | Path, store: ResultsStore) -> SubmitOutcome:
    return submit_bytes(read_submission(path), store, source=Path(path).name)


def name_flags(store: ResultsStore, run: dict) -> list[str]:
    """Why a maintainer should look twice before approving ``run``: a submission whose model name is
    already an approved run's model or base model (it would read as that model's own result)."""
    if run.get("source") != "submission":
        return []
    flags = []
    for other in store.runs(status="approved"):
        if other["run_id"] == run["run_id"]:
            continue
        for key, what in (("model", "model"), ("base_model", "base model")):
            if run.get("model") and other.get(key) == run["model"]:
                flags.append(f"run {run['run_id']} claims the name '{run['model']}', already the {what} of "
                             f"approved run {other['run_id']}")
                break
        if len(flags) >= 3:
            break
    return flags


def approve(store: ResultsStore, run_ids: list[str] | None = None, *, force: bool = False,
            flagged: list[str] | None = None) -> list[str]:
    """Approve the given runs (ids or unique prefixes), or every pending run when ``run_ids`` is None.

    A run with ``name_flags`` is approved only with ``force``; otherwise its flags are appended to
    ``flagged`` (when given) and it stays pending.
    """
    runs = store.runs(status="pending") if run_ids is None else [store.get_run(r) for r in run_ids]
    ids = []
    for run in runs:
        flags = name_flags(store, run)
        if flags and not force:
            if flagged is not None:
                flagged.extend(flags)
            continue
        store.set_status(run["run_id"], "approved")
        ids.append(run["run_id"])
    return ids


def reject(store: ResultsStore, run_id: str) -> str:
    """Mark a run rejected: it leaves every table but stays stored, so the same content cannot come back."""
    run_id = store.get_run(run_id)["run_id"]
    store.set_status(run_id, "rejected")
    return run_id
