"""Store a validated submission as pending; approve or reject it later.

Each run of a file is one ``ResultsStore.add_run`` transaction (``BEGIN IMMEDIATE`` under WAL with a busy
timeout), so concurrent submitters queue instead of corrupting the store, and the store's unique
fingerprint rejects a run whose content is already there even when two identical files race.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import DataError, HarnessError
from harness.results.store import ResultsStore
from leaderboard.schema import MAX_BYTES, parse_bytes, validate

log = logging.getLogger(__name__)

STATUSES = ("approved", "pending", "rejected")


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


def submit_bytes(data: bytes, store: ResultsStore, source: str = "submission") -> SubmitOutcome:
    """Validate a whole file first (nothing is stored if any run is malformed), then store each run."""
    subs = validate(parse_bytes(data, source), source)
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


def approve(store: ResultsStore, run_ids: list[str] | None = None) -> list[str]:
    """Approve the given runs (ids or unique prefixes), or every pending run when ``run_ids`` is None."""
    ids = [r["run_id"] for r in store.runs(status="pending")] if run_ids is None else [
        store.get_run(r)["run_id"] for r in run_ids
    ]
    for run_id in ids:
        store.set_status(run_id, "approved")
    return ids


def reject(store: ResultsStore, run_id: str) -> str:
    """Mark a run rejected: it leaves every table but stays stored, so the same content cannot come back."""
    run_id = store.get_run(run_id)["run_id"]
    store.set_status(run_id, "rejected")
    return run_id
