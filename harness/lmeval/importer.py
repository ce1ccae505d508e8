"""``harness import lm-eval RESULTS.json``: record an lm-eval run in the results store.

Every ``<metric>,<filter>`` value in ``results`` becomes a result row (metric names lose the ``,none``
filter suffix; other filters are kept as ``<metric>@<filter>``; ``_stderr`` entries are skipped). For tasks
exported by ``harness export lm-eval`` the harness task name comes from the config's metadata
(``vqa_rad_closed`` -> ``vqa_rad``). A group run (``--tasks vqa_rad``) lists the group beside its subtasks:
the subtasks' rows and samples are stored, and a group's own number only where no subtask gave that task
and metric. When the run logged samples (``--log_samples``), they are converted into harness predictions
files under a run directory, one record per logged document, so ``harness regress`` can compare the
imported run with any harness run item by item.

An imported run is stored ``pending``: it reaches the leaderboard only after ``harness leaderboard approve``.
Its fingerprint is the results file's hash, so importing the same file twice is refused. A metric without
an lm-eval stderr gets a 95% interval from the logged samples (``fill_from_samples``): from per-sample
numbers (Wilson for 0/1 values, else a bootstrap), or, for the exported tasks, whose samples log
``(id, prediction, reference)``, from the harness's own metric run again on them, when it gives the
reported value. A ``--limit`` run keeps its limit in the config, and the leaderboard marks it partial.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from pathlib import Path
from typing import Any

from harness.core.errors import DataError
from harness.stats.intervals import normal_interval

log = logging.getLogger(__name__)


def _task_map(payload: dict[str, Any]) -> dict[str, str]:
    return {name: (cfg.get("metadata") or {}).get("harness_task", name)
            for name, cfg in (payload.get("configs") or {}).items()}


def _groups(payload: dict[str, Any]) -> set[str]:
    """Names in ``results`` that are lm-eval groups: their numbers aggregate subtasks that lm-eval logs on
    their own, and they have no samples file of their own."""
    subtasks = payload.get("group_subtasks")
    return {name for name, children in subtasks.items() if children} if isinstance(subtasks, dict) else set()


def _task_rows(payload: dict[str, Any], path: Path) -> list[tuple[str, Any]]:
    """``(lm-eval task, result row)`` pairs; a group's row only where no subtask gave the same task and metric."""
    from harness.results.store import ResultRow

    results = payload.get("results")
    if not isinstance(results, dict) or not results:
        raise DataError(path, "no lm-eval results (a 'results' object with one entry per task)", field="results")
    tasks = _task_map(payload)
    groups = _groups(payload)
    better = payload.get("higher_is_better") or {}
    samples = payload.get("n-samples") or {}
    pairs, seen = [], set()
    for lm_task in sorted(results, key=lambda name: name in groups):  # subtasks first
        task = tasks.get(lm_task, lm_task)
        n = (samples.get(lm_task) or {}).get("effective")
        for key, value in (results[lm_task] or {}).items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric, filt = key.split(",", 1)
            name = metric if filt == "none" else f"{metric}@{filt}"
            if math.isnan(value) or (task, name) in seen:
                continue
            seen.add((task, name))
            stderr = results[lm_task].get(f"{metric}_stderr,{filt}")
            low = high = None
            if isinstance(stderr, (int, float)) and not math.isnan(stderr):  # normal interval from lm-eval's stderr
                low, high = normal_interval(float(value), float(stderr), z=1.96)  # lm-eval's own rounding
            pairs.append((lm_task, ResultRow(task=task, metric=name, value=float(value), ci_low=low, ci_high=high,
                                             n=n, higher_is_better=bool((better.get(lm_task) or {}).get(metric, True)))))
    if not pairs:
        raise DataError(path, "no numeric metric values in 'results'", field="results")
    return pairs


def result_rows(payload: dict[str, Any], path: Path) -> list:
    return [row for _, row in _task_rows(payload, path)]


def fill_from_samples(path: Path, payload: dict[str, Any], pairs: list[tuple[str, Any]]) -> int:
    """Fill missing intervals from the logged samples; returns the rows filled.

    A metric's per-sample values are either numbers (lm-eval's own metrics: 0/1 or scores) that average to
    the reported value, which get ``mean_result``'s interval (Wilson for 0/1 values, else a percentile
    bootstrap), or the ``(id, prediction, reference)`` triples the tasks of ``harness export lm-eval`` log,
    which the harness scores again with its own metric and its bootstrap interval. Either way the row is
    filled only when the recomputed value equals the reported one.
    """
    files = _sample_files(path, payload)
    filled = 0
    for lm_task, row in pairs:
        if row.ci_low is not None or "@" in row.metric or lm_task not in files:
            continue
        result = _recompute(row, _read_samples(files[lm_task]))
        if result is None or abs(result.value - row.value) > 1e-6:  # not the number lm-eval reported
            continue
        if math.isfinite(result.ci_low) and math.isfinite(result.ci_high):
            row.ci_low, row.ci_high = float(result.ci_low), float(result.ci_high)
            row.n = row.n or result.n
            filled += 1
    return filled


def _recompute(row: Any, samples: list[dict[str, Any]]) -> Any:
    from harness.metrics.base import mean_result

    values = [s.get(row.metric) for s in samples]
    if not values:
        return None
    if all(isinstance(v, (int, float)) for v in values):  # bools count as 0/1
        return mean_result(row.metric, [float(v) for v in values], higher_is_better=row.higher_is_better)
    if not all(isinstance(v, (list, tuple)) and len(v) == 3 for v in values):
        return None
    from harness.metrics import METRICS, get_metric

    if row.metric not in METRICS:
        return None
    try:
        return get_metric(row.metric)([str(v[1]) for v in values], [str(v[2]) for v in values])
    except Exception as exc:  # a metric that cannot run here (a missing labeler...) leaves the row without one
        log.warning("no interval for %s/%s: %s", row.task, row.metric, str(exc).splitlines()[0] if str(exc) else
                    type(exc).__name__)
        return None


# lm-eval names its files ``results_<stamp>.json`` and ``samples_<task>_<stamp>.jsonl``, stamp = isoformat with
# "-" for ":". The stamp pattern keeps a group's name (``vqa_rad``) from matching its subtasks' files.
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(\.\d+)?")


def _sample_files(path: Path, payload: dict[str, Any]) -> dict[str, Path]:
    """The samples file of each logged task (groups have none), from the same run as the results file when
    it is there, else the newest."""
    stamp = path.stem.removeprefix("results_")
    groups = _groups(payload)
    found = {}
    for lm_task in payload.get("results", {}):
        if lm_task in groups:
            continue
        same = path.parent / f"samples_{lm_task}_{stamp}.jsonl"
        candidates = [same] if same.is_file() else sorted(
            p for p in path.parent.glob(f"samples_{lm_task}_*.jsonl")
            if _STAMP.fullmatch(p.stem.removeprefix(f"samples_{lm_task}_")))
        if candidates:
            found[lm_task] = candidates[-1]
    return found


def _read_samples(sample_path: Path) -> list[dict[str, Any]]:
    """One logged sample per document: lm-eval logs a document once per filter; the unfiltered one wins."""
    from harness.core.io import read_jsonl

    by_doc: dict[Any, dict[str, Any]] = {}
    for line, sample in enumerate(read_jsonl(sample_path), 1):
        if not isinstance(sample, dict):
            raise DataError(sample_path, "expected an object", record=line)
        key = sample.get("doc_id", line)
        if key not in by_doc or (sample.get("filter") == "none" and by_doc[key].get("filter") != "none"):
            by_doc[key] = sample
    return list(by_doc.values())


def convert_samples(path: Path, payload: dict[str, Any], pred_dir: Path) -> int:
    """Write harness predictions (``<task>.jsonl``, one record per logged document) from lm-eval sample
    logs; returns the records written."""
    from harness.core.io import write_jsonl

    tasks = _task_map(payload)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for lm_task, sample_path in _sample_files(path, payload).items():
        for line, sample in enumerate(_read_samples(sample_path), 1):
            doc = sample.get("doc") or {}
            resps = sample.get("filtered_resps") or sample.get("resps")
            if not resps:
                raise DataError(sample_path, "no response", record=line, field="resps")
            prediction = resps[0][0] if isinstance(resps[0], list) else resps[0]
            by_task.setdefault(tasks.get(lm_task, lm_task), []).append({
                "id": str(doc.get("id", sample.get("doc_id"))),
                "question": doc.get("question", ""),
                "answer_type": doc.get("answer_type", "open"),
                "prediction": str(prediction).strip(),
                "reference": str(doc.get("answer", sample.get("target", ""))),
                "metadata": {"lm_eval_task": lm_task},
            })
    for task, records in by_task.items():
        write_jsonl(pred_dir / f"{task}.jsonl", records)
    return sum(len(r) for r in by_task.values())


def import_lm_eval(results_path: str | Path, *, store: Any = None, model: str | None = None,
                   method: str | None = None, base_model: str | None = None) -> str:
    """Store the lm-eval run (and its samples as predictions); returns the new run id."""
    from harness.core.io import read_json, write_json
    from harness.core.paths import runs_dir
    from harness.results.store import ResultsStore, RunRecord, new_run_id

    path = Path(results_path)
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise DataError(path, "not an lm-eval results object")
    pairs = _task_rows(payload, path)
    rows = [row for _, row in pairs]
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    fingerprint = "lm-eval:sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    earlier = next((r["run_id"] for r in store.runs() if r.get("fingerprint") == fingerprint), None)
    if earlier:
        raise DataError(path, f"already imported as run {earlier}")
    fill_from_samples(path, payload, pairs)
    config = payload.get("config") or {}
    model_args = config.get("model_args") or {}
    name = model or payload.get("model_name") or (model_args.get("pretrained") if isinstance(model_args, dict)
                                                  else None) or str(config.get("model", "lm-eval"))
    run_id = new_run_id()
    run_dir = runs_dir() / run_id
    written = convert_samples(path, payload, run_dir / "predictions")
    write_json(run_dir / "lm_eval_results.json", payload)
    record = RunRecord(
        model=Path(str(name)).name if Path(str(name)).is_absolute() else str(name),
        base_model=base_model, method=method, model_type=str(config.get("model", "")) or None,
        config={"source": "lm-eval", "lm_eval": {k: config.get(k) for k in ("model", "model_args", "limit",
                "batch_size", "gen_kwargs", "random_seed")}, "tasks": sorted({r.task for r in rows})},
        versions={"lm_eval": str(payload.get("lm_eval_version", "")),
                  "transformers": str(payload.get("transformers_version", ""))},
        git_commit=payload.get("git_hash"), seed=config.get("random_seed"), source="lm-eval",
        predictions_dir=str(run_dir) if written else None, run_id=run_id, status="pending",
        fingerprint=fingerprint,
    )
    store.add_run(record, rows)
    log.info("imported %d result rows and %d predictions as run %s", len(rows), written, run_id)
    return run_id
