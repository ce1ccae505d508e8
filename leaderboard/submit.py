"""Store a validated submission as pending; approve or reject it later.

Each run of a file is one ``ResultsStore.add_run`` transaction (``BEGIN IMMEDIATE`` under WAL with a busy
timeout), so concurrent submitters queue instead of corrupting the store, and the store's unique
fingerprint rejects a run whose content is already there even when two identical files race. Before it is
stored, each run gets its data records and ``verification`` computed from its predictions
(``leaderboard.provenance``).

Who submitted is kept as a keyed hash (HMAC-SHA256 of the visitor's address or user name with the
leaderboard's secret, ``submitter_key``) in the store's ``submitters`` table, for the rate limit only: never
in a config, a page, an export or a Space. The secret is ``HARNESS_LEADERBOARD_SECRET``; without it, a random
one generated at the first ``harness leaderboard serve`` (or upload) and kept in
``$HARNESS_HOME/leaderboard.secret`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.core.errors import DataError, HarnessError
from harness.results.store import ResultsStore
from leaderboard.names import model_label, name_key
from leaderboard.schema import MAX_BYTES, parse_bytes, validate

log = logging.getLogger(__name__)

STATUSES = ("approved", "pending", "rejected")
RUNS_PER_HOUR = 20  # per submitter; HARNESS_SUBMIT_LIMIT overrides (0 turns the limit off)
# the app's upload threads check and store under one lock, so simultaneous uploads cannot pass the limit
_RATE_LOCK = threading.Lock()
SECRET_ENV = "HARNESS_LEADERBOARD_SECRET"
SECRET_FILE = "leaderboard.secret"  # under HARNESS_HOME, mode 0600
MIN_SECRET_CHARS = 32


def leaderboard_secret() -> bytes:
    """The key of the submitter hashes: ``HARNESS_LEADERBOARD_SECRET``, else the secret file under
    ``HARNESS_HOME``, created with 64 random hex digits (mode 0600) when missing."""
    from harness.core.paths import harness_home
    from harness.core.secrets import register_secret_value

    value = os.environ.get(SECRET_ENV, "").strip()
    if value:
        if len(value) < MIN_SECRET_CHARS:
            raise HarnessError(f"{SECRET_ENV} is {len(value)} characters; use at least {MIN_SECRET_CHARS} random "
                               "ones (python -c 'import secrets; print(secrets.token_hex(32))')")
        return value.encode("utf-8")
    path = harness_home() / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        log.info("generated the leaderboard's submitter-hash secret in $HARNESS_HOME/%s (mode 0600)", SECRET_FILE)
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)  # a secret readable by others is no secret
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read the leaderboard secret $HARNESS_HOME/{SECRET_FILE} ({exc}): set "
                           f"{SECRET_ENV} or remove the file to make a new one") from None
    if len(value) < MIN_SECRET_CHARS:
        raise HarnessError(f"the leaderboard secret $HARNESS_HOME/{SECRET_FILE} is too short: set {SECRET_ENV} "
                           "or remove the file to make a new one")
    register_secret_value(value)  # redacted from every file and log the harness writes
    return value.encode("utf-8")


def submitter_key(identity: str) -> str:
    """What the store keeps about a submitter: a keyed hash (HMAC-SHA256 with ``leaderboard_secret``) of their
    identity (an IP address or a user name). Without the secret it cannot be reversed by trying addresses."""
    digest = hmac.new(leaderboard_secret(), identity.encode("utf-8"), hashlib.sha256).hexdigest()
    return "hmac-sha256:" + digest[:32]


def runs_per_hour() -> int:
    value = os.environ.get("HARNESS_SUBMIT_LIMIT", "")
    try:
        return int(value) if value.strip() else RUNS_PER_HOUR
    except ValueError:
        raise HarnessError(f"HARNESS_SUBMIT_LIMIT must be an integer, got {value!r}") from None


def recent_runs(store: ResultsStore, key: str, hours: float = 1.0) -> int:
    """Submitted runs stored for ``key`` in the last ``hours`` (whatever their status now). It reads the
    ``submitters`` table only, so no stored config, however malformed, can make it fail."""
    since = (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")
    return store.submissions_since(key, since)


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
    from leaderboard.provenance import stamp

    subs = validate(parse_bytes(data, source), source)
    if submitter is None:
        for sub in subs:
            stamp(sub, store)
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
            stamp(sub, store)
        return _store_all(subs, store, source, submitter=key)


def _store_all(subs: list, store: ResultsStore, source: str, submitter: str | None = None) -> SubmitOutcome:
    outcome = SubmitOutcome()
    for i, sub in enumerate(subs):
        try:
            outcome.stored.append(store.add_run(sub.run, sub.results, submitter=submitter))
        except HarnessError as exc:  # a duplicate fingerprint: the run is already on the board or pending
            outcome.rejected.append(f"{source}, record run {i}: {exc}")
    log.info("%s: %d run(s) pending, %d rejected", source, len(outcome.stored), len(outcome.rejected))
    return outcome


def submit_file(path: str | Path, store: ResultsStore) -> SubmitOutcome:
    return submit_bytes(read_submission(path), store, source=Path(path).name)


def _keys(name: object) -> set[str]:
    """The name keys a stored name reads as: the whole name, and a local model's name without its weights'
    fingerprint (``tiny@44dfce972b03b425`` reads as ``tiny``)."""
    if not isinstance(name, str) or not name:
        return set()
    return {name_key(name), name_key(model_label(name))} - {""}


def name_flags(store: ResultsStore, run: dict) -> list[str]:
    """Why a maintainer should look twice before approving ``run``: a submission whose model name reads as an
    approved run's model or base model (it would pass for that model's own result). Names are compared by
    ``leaderboard.names.name_key``: invisible characters, compatibility forms (fullwidth), look-alike letters
    of other scripts and case make no difference; a flag says when the spelling differs."""
    if run.get("source") != "submission" or not _keys(run.get("model")):
        return []
    mine, flags = _keys(run["model"]), []
    for other in store.runs(status="approved"):
        if other["run_id"] == run["run_id"]:
            continue
        for key, what in (("model", "model"), ("base_model", "base model")):
            if mine & _keys(other.get(key)):
                spelled = "" if other.get(key) == run["model"] else f", a look-alike of {ascii(other[key])}"
                flags.append(f"run {run['run_id']} claims the name {ascii(run['model'])}{spelled}, already the "
                             f"{what} of approved run {other['run_id']}")
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


def pending_report(store: ResultsStore, run: dict) -> str:
    """Everything a maintainer decides on for one pending run, as text: its names (``ascii()``, so an invisible
    or look-alike character shows as its code point), versions, results, what the leaderboard could verify,
    the whole config as JSON, and its flags."""
    import json

    from harness.results.compare import partial_reason

    flags = name_flags(store, run)
    config = run.get("config") or {}
    partial = partial_reason(run)
    checks = config.get("verification") if isinstance(config.get("verification"), dict) else {}
    lines = [
        f"{run['run_id']}  {run['created_at']}  source={run.get('source')}" + ("  FLAGGED" if flags else ""),
        f"  model={ascii(run.get('model'))} method={ascii(run.get('method'))} base={ascii(run.get('base_model'))} "
        f"type={ascii(run.get('model_type'))} seed={run.get('seed')}",
        f"  harness={ascii(run.get('harness_version'))} commit={ascii(run.get('git_commit'))} "
        f"versions={json.dumps(run.get('versions') or {}, sort_keys=True)}",
        f"  test set: {'partial (' + partial + ')' if partial else 'full'}; checks: "
        + (", ".join(f"{k} {v}" for k, v in sorted(checks.items())) or "none recorded"),
    ]
    for row in store.results(run_ids=[run["run_id"]]):
        interval = "" if row.get("ci_low") is None else f" [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
        lines.append(f"  {row['task']}/{row['metric']} = {row['value']:.4g}{interval} n={row.get('n')}")
    lines.append("  config: " + json.dumps(config, sort_keys=True, ensure_ascii=True))
    lines += [f"  FLAG: {flag}" for flag in flags]
    return "\n".join(lines)
