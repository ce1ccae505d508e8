"""What data a run used, by content: the record every evaluation keeps per task, and the pair cache's key.

``split_record(task, split, rows, ...)`` describes the evaluated items of one task:

- ``task``, ``version``, ``split``, ``source`` (``files``: a data folder; ``generated``: the synthetic suite
  from its options) and the task's ``options``; never the folder's path;
- ``data_source``: which copy of the data, for tasks that read more than one (``Task.data_source``):
  ``original:split`` / ``original:osf`` / ``original:release`` for the authors' files,
  ``hub-snapshot:<repo>`` for a local Hub snapshot, ``hub:<repo>`` for ``datasets.load_dataset``; absent for
  tasks with one source. A run on anything but an original is marked wherever partial runs are
  (``partial_tasks``), so a Hub-copy score is never ranked beside an original-split score unmarked;
- ``items_sha256``: the SHA-256 of the sorted item ids;
- ``content_sha256``: the SHA-256 of every evaluated item's text as loaded (id, question, answer, answer type
  and the metadata columns, in id order): the annotations as the harness read them, whatever their layout.
  Image files are identified by the annotations that name them, not by their bytes;
- ``n`` (items evaluated), ``n_split`` (items the split held before any limit), ``expected_n`` (the official
  split's size, ``Task.expected_size``; None when unknown);
- ``partial``: why the items are not the official split ('' when they are): a limit, or a count other than
  the official one.

``rows_digest(rows)`` is the content digest alone; ``split_digest`` (the pair cache and the evaluation signature
key by it) adds the task's version once the task has left its first one (``version_key``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Columns that hold where a file lies, not what an item is: a copy of the data elsewhere is the same data.
PATH_COLUMNS = ("image", "mask", "image_path", "images", "mask_path")
# Task options naming a file or folder: recorded by their last component only, so no machine path reaches a
# result (what was read is in the content digest).
PATH_OPTIONS = ("annotations", "annotation")


def _option_text(name: str, value: Any) -> str:
    text = str(value)
    return Path(text).name if name in PATH_OPTIONS and text else text


def rows_digest(rows: Sequence[dict[str, Any]]) -> str:
    """SHA-256 of the items' text columns (path columns left out), in id order."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: str(r.get("id"))):
        kept = {k: v for k, v in row.items() if k not in PATH_COLUMNS}
        digest.update(json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def ids_digest(ids: Sequence[Any]) -> str:
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


def split_record(task: Any, split: str, rows: Sequence[dict[str, Any]], *, n_split: int,
                 limit: int | None, data_dir: Any = None) -> dict[str, Any]:
    """The data record of one task's evaluated items (see the module docstring); ``data_dir`` is the folder the
    run read (only to tell which copy of the data it holds: the record never names it)."""
    expected = task.expected_size(split)
    n = len(rows)
    reasons = []
    if limit is not None and limit < n_split:
        reasons.append(f"limit {limit}")
    if expected is not None and n != expected:
        reasons.append(f"{n} of the official {expected} items")
    record = {
        "task": task.name, "version": task.version, "split": split, "source": task.source_kind,
        "options": {k: _option_text(k, v) for k, v in sorted(task.options.items())},
        "items_sha256": ids_digest([r["id"] for r in rows]), "content_sha256": rows_digest(rows),
        "n": n, "n_split": n_split, "expected_n": expected, "partial": "; ".join(reasons),
    }
    if callable(getattr(task, "data_source", None)):
        record["data_source"] = task.data_source(data_dir)
    return record


def copy_mark(record: dict[str, Any]) -> str:
    """``"data from hub-snapshot:<repo>"`` for a record whose ``data_source`` is not the original release; ''."""
    source = str(record.get("data_source") or "")
    return f"data from {source}" if source and not source.startswith("original:") else ""


def partial_tasks(data: dict[str, Any] | None) -> dict[str, str]:
    """``{task: reason}`` for the tasks of a run's ``data`` records that are not the official split as released:
    fewer or other items (``partial``), or a copy other than the original (``copy_mark``)."""
    if not isinstance(data, dict):
        return {}
    marks = {}
    for name, rec in data.items():
        if isinstance(rec, dict):
            reason = "; ".join(r for r in (str(rec.get("partial") or ""), copy_mark(rec)) if r)
            if reason:
                marks[name] = reason
    return marks


_digests: dict[tuple, str] = {}


def split_digest(task: Any, split: str, data_dir: Any = None, *, limit: int | None = None,
                 shuffle_seed: int | None = None) -> str:
    """``rows_digest`` of a split's items as a run selects them: shuffled by ``shuffle_seed`` (when given and the
    split is larger than ``limit``), then the first ``limit``. Memoised per process by the task, its options,
    the selection and the data folder's top-level files (name, size, mtime), so data replaced on disk is read
    again."""
    folder = task.data_dir(data_dir)
    stamp = None
    if folder is not None and folder.is_dir():
        stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()
                             if p.is_file()))
    key = (task.name, task.version, json.dumps(task.options, sort_keys=True, default=str), split,
           str(folder), limit, shuffle_seed, stamp)
    if key not in _digests:
        dataset = task.load(split, data_dir=data_dir)
        if limit is not None and len(dataset) > limit:
            dataset = dataset.shuffle(seed=shuffle_seed).select(range(limit)) if shuffle_seed is not None \
                else dataset.select(range(limit))
        columns = [c for c in dataset.column_names if c not in PATH_COLUMNS]
        digest = rows_digest(dataset.select_columns(columns).to_list())
        version = version_key(task)
        _digests[key] = hashlib.sha256(f"{digest}\n{version}".encode()).hexdigest() if version else digest
    return _digests[key]


def version_key(task: Any) -> str | None:
    """The task version as ``split_digest`` (so the evaluation signature and the pair cache key) folds it in: the
    version changes whenever prompts or scoring do, so a base evaluation or pairs made under other prompts are
    never reused. None while a task is still at its first version (its class default), so keys made before
    versions were keyed stay valid for those (the synthetic suite, iu_xray, mimic_cxr)."""
    import dataclasses

    first = {f.name: f.default for f in dataclasses.fields(task)}.get("version") if dataclasses.is_dataclass(task) \
        else None
    return None if task.version == first else str(task.version)
