"""Provenance computed at the door: what a submission's predictions show, not what its config says.

A submitted run may carry ``predictions``: per task, the ids of the items it answered. At submission the
leaderboard builds each task's data record (the shape of ``harness.tasks.identity.split_record``) from them,
stores it as ``config.data`` (a self-declared ``data`` is dropped), and ``harness.results.compare.
partial_reason`` marks the run partial from it:

- the task's official test split is here (a data folder under ``HARNESS_DATA``, or a generated task): the ids
  are checked against it. Fewer items, or ids the split does not hold, make the run partial.
  ``verification``: ``verified``;
- the data is not here: the count is checked against the official size (``Task.expected_size``); another
  count makes the run partial. ``verification``: ``unverified`` (the ids could not be checked);
- no predictions for the task: nothing can be checked, so the run is marked partial (``unverified: no
  predictions submitted``). ``verification``: ``self-declared``.

``config.verification`` then says, per field, how far the leaderboard could check it: ``test_set`` (the
weakest of the tasks'), ``base_run`` (when ``config.base_run_id`` names one: ``verified`` when that run is
in the store, approved, and its model is the submission's base model with the same weights fingerprint,
``<name>@<fingerprint>``; else ``unverified``) and ``model_fingerprint`` (``verified`` when the base model's
``<name>@<fingerprint>`` is the model of an approved run in the store, ``self-declared`` when it carries a
fingerprint nothing here confirms, ``unverified`` when it carries none).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

SPLIT = "test"  # the leaderboard ranks test-set results
VERIFIED, UNVERIFIED, SELF_DECLARED = "verified", "unverified", "self-declared"
_STRENGTH = (SELF_DECLARED, UNVERIFIED, VERIFIED)
NO_PREDICTIONS = "unverified: no predictions submitted"
_FINGERPRINTED = re.compile(r"^.+@[0-9a-f]{8,64}$")

_official: dict[tuple, list[str] | None] = {}


def official_ids(task: Any) -> list[str] | None:
    """The ids of ``task``'s official test split when its data is here (a generated task's always are) and
    has the official size; None otherwise. Memoised per task, options and data folder contents."""
    folder = None
    if task.source_kind != "generated":
        folder = task.data_dir()
        if folder is None or not folder.is_dir():
            return None
    stamp = None if folder is None else tuple(
        sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    key = (task.name, task.version, json.dumps(task.options, sort_keys=True, default=str), str(folder), stamp)
    if key not in _official:
        try:
            ids = [str(i) for i in task.load(SPLIT)["id"]]
        except Exception as exc:  # unreadable data: the count is still checked
            log.warning("%s: cannot read the %s split here (%s); submissions are checked by count only",
                        task.name, SPLIT, " ".join(str(exc).split())[:200])
            ids = None
        expected = task.expected_size(SPLIT)
        if ids is not None and expected is not None and len(ids) != expected:
            log.warning("%s: the data here has %d %s items, not the official %d; submissions are checked by "
                        "count only", task.name, len(ids), SPLIT, expected)
            ids = None
        _official[key] = ids
    return _official[key]


def data_record(task_name: str, ids: Sequence[str] | None, declared_n: int | None = None) -> dict[str, Any]:
    """The data record of one task of a submitted run, from its prediction ids (None: none submitted)."""
    from harness.tasks import get_task
    from harness.tasks.identity import ids_digest

    task = get_task(task_name)
    expected = task.expected_size(SPLIT)
    record: dict[str, Any] = {"task": task.name, "version": task.version, "split": SPLIT, "source": "submission",
                              "expected_n": expected}
    if ids is None:
        return {**record, "n": None, "declared_n": declared_n, "checked": "nothing", "partial": NO_PREDICTIONS,
                "verification": SELF_DECLARED}
    n, reasons = len(ids), []
    official = official_ids(task)
    if official is not None:
        split = set(official)
        found = sum(1 for i in ids if i in split)
        if found < len(split):
            reasons.append(f"{found} of the official {len(split)} items")
        if found < n:
            reasons.append(f"{n - found} ids not in the official {SPLIT} split")
        checked, verification, expected = "ids", VERIFIED, len(split)
    else:
        if expected is not None and n != expected:
            reasons.append(f"{n} of the official {expected} items")
        checked, verification = "count", UNVERIFIED
    return {**record, "expected_n": expected, "items_sha256": ids_digest(ids), "n": n, "declared_n": declared_n,
            "checked": checked, "partial": "; ".join(reasons), "verification": verification}


def data_records(tasks: Sequence[str], predictions: dict[str, list[str]],
                 declared: dict[str, int | None]) -> dict[str, dict[str, Any]]:
    return {task: data_record(task, predictions.get(task), declared.get(task)) for task in tasks}


def weakest(values: Sequence[str]) -> str:
    return min(values, key=_STRENGTH.index) if values else SELF_DECLARED


def verification(config: dict[str, Any], base_model: str | None, data: dict[str, dict[str, Any]],
                 store: Any) -> dict[str, str]:
    """How far each provenance field of a submitted run could be checked (see the module docstring)."""
    out = {"test_set": weakest([record["verification"] for record in data.values()])}
    approved_models = {r["model"] for r in store.runs(status="approved")}
    fingerprinted = bool(base_model and _FINGERPRINTED.match(base_model))
    named = config.get("base_run_id")
    if named:
        base = store.runs(run_ids=[str(named)])
        ok = (fingerprinted and len(base) == 1 and base[0]["status"] == "approved"
              and base[0]["model"] == base_model)
        out["base_run"] = VERIFIED if ok else UNVERIFIED
    if not fingerprinted:
        out["model_fingerprint"] = UNVERIFIED
    else:
        out["model_fingerprint"] = VERIFIED if base_model in approved_models else SELF_DECLARED
    return out


def stamp(submission: Any, store: Any) -> None:
    """Write the computed ``data`` and ``verification`` into a validated submission's config."""
    run = submission.run
    tasks = list(dict.fromkeys(r.task for r in submission.results))
    declared: dict[str, int | None] = {}
    for row in submission.results:
        if row.n is not None:
            declared[row.task] = max(declared.get(row.task) or 0, row.n)
    data = data_records(tasks, submission.predictions, declared)
    run.config = {**run.config, "data": data,
                  "verification": verification(run.config, run.base_model, data, store)}
