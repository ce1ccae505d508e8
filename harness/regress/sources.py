"""Where regression comparisons read per-sample predictions from.

A source is a run id in the results store (its ``predictions_dir``), a run directory (with a
``predictions/`` folder, or the folder itself), or one predictions JSON Lines file. Records are keyed by
``(task, id)``. The task of a file is its records' ``task`` field when present, else the file's stem
(``vqa_rad.jsonl`` -> ``vqa_rad``). Ablated passes (``vqa_rad@noise.jsonl``) and part files are skipped:
a regression gate compares the models' own answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.errors import DataError, HarnessError

log = logging.getLogger(__name__)

REQUIRED = ("id", "prediction", "reference", "answer_type")

Predictions = dict[tuple[str, str], dict[str, Any]]


def load_source(source: str | Path, *, store: Any = None) -> tuple[str, Predictions]:
    """``(label, {(task, id): record})`` for a run id, a run directory or a predictions file."""
    path = Path(source)
    if path.is_file():
        return str(source), _read_file(path)
    if path.is_dir():
        return str(source), _read_dir(path)
    from harness.results.store import ResultsStore

    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    if not store.path.exists():
        raise HarnessError(f"'{source}' is neither a file, a folder nor a run (no results store at {store.path})")
    run = store.get_run(str(source))
    folder = run.get("predictions_dir")
    if not folder:
        raise HarnessError(f"run '{run['run_id']}' has no per-sample predictions recorded (predictions_dir is empty)")
    if not Path(folder).is_dir():
        raise HarnessError(f"run '{run['run_id']}': its predictions folder {folder} does not exist")
    return run["run_id"], _read_dir(Path(folder))


def _read_dir(folder: Path) -> Predictions:
    pred_dir = folder / "predictions" if (folder / "predictions").is_dir() else folder
    files = sorted(p for p in pred_dir.glob("*.jsonl") if ".part-" not in p.name and "@" not in p.stem)
    parts = sorted(p for p in pred_dir.glob("*.part-*.jsonl") if "@" not in p.name)
    if not files and parts:  # an interrupted run: its part files hold the answers so far
        log.warning("%s: no merged predictions, reading %d part file(s)", pred_dir.name, len(parts))
        files = parts
    if not files:
        raise HarnessError(f"no predictions (*.jsonl) in {pred_dir}")
    records: Predictions = {}
    for path in files:
        for key, record in _read_file(path).items():
            records.setdefault(key, record)
    return records


def _read_file(path: Path) -> Predictions:
    from harness.io import read_jsonl

    default_task = path.name.split(".part-")[0].removesuffix(".jsonl")
    records: Predictions = {}
    rows = list(read_jsonl(path))  # malformed lines raise DataError naming the file and line
    for line, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(path, "a line is not a JSON object", record=line)
        for name in REQUIRED:
            if name not in row:
                raise DataError(path, "missing", record=line, field=name)
        task = str(row.get("task") or default_task)
        records.setdefault((task, str(row["id"])), row)
    if not records:
        raise DataError(path, "holds no predictions")
    return records
