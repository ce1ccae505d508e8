"""Where regression comparisons read per-sample predictions from.

A source is a pinned baseline name or a run id in the results store (its ``predictions_dir``), a run directory (with a
``predictions/`` folder, or the folder itself), or one predictions JSON Lines file. Records are keyed by
``(task, id)``. The task of a file is its records' ``task`` field when present, else the file's stem
(``vqa_rad.jsonl`` -> ``vqa_rad``). Ablated passes (``vqa_rad@noise.jsonl``) and part files are skipped:
a regression gate compares the models' own answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError

log = logging.getLogger(__name__)

REQUIRED = ("id", "prediction", "reference", "answer_type")

Predictions = dict[tuple[str, str], dict[str, Any]]

# What a run's evaluation settings are compared on (``harness regress --allow-diff`` takes these keys).
DECODING_KEYS = ("do_sample", "temperature")
BUDGET_KEYS = ("max_new_tokens_closed", "max_new_tokens_open", "max_new_tokens_report")


@dataclass
class Source:
    """One side of a comparison: its label, its records and what is known of how they were produced."""

    label: str
    records: Predictions
    settings: dict[str, Any] = field(default_factory=dict)  # comparability key -> value (absent: unknown)


def load_source(source: str | Path, *, store: Any = None) -> tuple[str, Predictions]:
    """``(label, {(task, id): record})`` for a run id, a pin name, a run directory or a predictions file."""
    loaded = open_source(source, store=store)
    return loaded.label, loaded.records


def open_source(source: str | Path, *, store: Any = None) -> Source:
    """A :class:`Source` for a predictions file, a run directory, a pinned baseline name or a run id."""
    path = Path(source)
    if path.is_file():
        return Source(str(source), _read_file(path), {})
    if path.is_dir():
        return Source(str(source), _read_dir(path), _dir_settings(path))
    from harness.results.store import ResultsStore

    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    if not store.path.exists():
        raise HarnessError(f"'{source}' is neither a file, a folder nor a run (no results store at {store.path})")
    run = store.get_run(store.resolve(str(source)))
    folder = run.get("predictions_dir")
    if not folder:
        raise HarnessError(f"run '{run['run_id']}' has no per-sample predictions recorded (predictions_dir is empty)")
    if not Path(folder).is_dir():
        raise HarnessError(f"run '{run['run_id']}': its predictions folder {folder} does not exist")
    settings = _dir_settings(Path(folder))
    settings.update(_config_settings(run.get("config") or {}))
    if run.get("harness_version"):
        settings["harness_version"] = run["harness_version"]
    versions = {r["task"]: r["task_version"] for r in store.results(run_ids=[run["run_id"]]) if r.get("task_version")}
    if versions:
        settings["task_versions"] = versions
    return Source(run["run_id"], _read_dir(Path(folder)), settings)


def _config_settings(config: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if any(k in config for k in DECODING_KEYS):
        decoding = {k: config.get(k) for k in DECODING_KEYS}
        if not config.get("do_sample"):
            decoding.pop("temperature")  # greedy decoding ignores the temperature
        # the sampling seed is left out: two seeds are two draws of the same decoding (the gate's null)
        settings["decoding"] = decoding
    if any(k in config for k in BUDGET_KEYS):
        settings["token_budgets"] = {k: config.get(k) for k in BUDGET_KEYS}
    if "split" in config:  # an image ablation adds passes the gate skips: the model's own answers are unchanged
        settings["split"] = config.get("split")
    if isinstance(config.get("data"), dict):  # what each task's items were (harness.tasks.identity)
        settings["data"] = config["data"]
    return settings


def _dir_settings(folder: Path) -> dict[str, Any]:
    """Settings recorded in a run directory: ``run.json`` (evaluation config) and ``results.json`` (versions)."""
    from harness.core.io import read_json

    settings: dict[str, Any] = {}
    manifest = folder / "run.json"
    if manifest.is_file():
        saved = read_json(manifest)
        settings.update(_config_settings(saved.get("config") or {}))
        if isinstance(saved.get("data"), dict):
            settings["data"] = saved["data"]
        version = (saved.get("run_config") or {}).get("harness_version")
        if version:
            settings["harness_version"] = version
    results = folder / "results.json"
    if results.is_file():
        rows = read_json(results).get("results") or []
        versions = {r["task"]: r["task_version"] for r in rows if isinstance(r, dict) and r.get("task_version")}
        if versions:
            settings["task_versions"] = versions
    return settings


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
    from harness.core.io import read_jsonl

    default_task = path.name.split(".part-")[0].removesuffix(".jsonl")
    records: Predictions = {}
    # malformed lines raise DataError naming the file and line; a part file of an interrupted evaluation may
    # end in a cut-off line, skipped with a warning
    rows = list(read_jsonl(path, skip_partial_last=".part-" in path.name))
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
