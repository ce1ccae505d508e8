"""``harness import lm-eval RESULTS.json``: record an lm-eval run in the results store.

Every ``<metric>,<filter>`` value in ``results`` becomes a result row (metric names lose the ``,none``
filter suffix; other filters are kept as ``<metric>@<filter>``; ``_stderr`` entries are skipped). For tasks
exported by ``harness export lm-eval`` the harness task name comes from the config's metadata
(``vqa_rad_closed`` -> ``vqa_rad``). When the run logged samples (``--log_samples``), they are converted
into harness predictions files under a run directory, so ``harness regress`` can compare the imported run
with any harness run item by item.

An imported run is stored ``pending``: it reaches the leaderboard only after ``harness leaderboard approve``.
Its fingerprint is the results file's hash, so importing the same file twice is refused. A metric without
an lm-eval stderr gets a 95% interval from the logged per-sample values when they are means (Wilson for 0/1 values).
A ``--limit`` run keeps its limit in the config, and the leaderboard marks it partial.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.stats.intervals import normal_interval

log = logging.getLogger(__name__)


def _task_map(payload: dict[str, Any]) -> dict[str, str]:
    return {name: (cfg.get("metadata") or {}).get("harness_task", name)
            for name, cfg in (payload.get("configs") or {}).items()}


def result_rows(payload: dict[str, Any], path: Path) -> list:
    from harness.results.store import ResultRow

    results = payload.get("results")
    if not isinstance(results, dict) or not results:
        raise DataError(path, "no lm-eval results (a 'results' object with one entry per task)", field="results")
    tasks = _task_map(payload)
    better = payload.get("higher_is_better") or {}
    samples = payload.get("n-samples") or {}
    rows = []
    for lm_task, values in results.items():
        task = tasks.get(lm_task, lm_task)
        n = (samples.get(lm_task) or {}).get("effective")
        for key, value in values.items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric, filt = key.split(",", 1)
            if math.isnan(value):
                continue
            stderr = values.get(f"{metric}_stderr,{filt}")
            low = high = None
            if isinstance(stderr, (int, float)) and not math.isnan(stderr):  # normal interval from lm-eval's stderr
                low, high = normal_interval(float(value), float(stderr), z=1.96)  # lm-eval's own rounding
            rows.append(ResultRow(task=task, metric=metric if filt == "none" else f"{metric}@{filt}",
                                  value=float(value), ci_low=low, ci_high=high, n=n,
                                  higher_is_better=bool((better.get(lm_task) or {}).get(metric, True))))
    if not rows:
        raise DataError(path, "no numeric metric values in 'results'", field="results")
    return rows


def fill_from_samples(path: Path, payload: dict[str, Any], rows: list) -> int:
    """Fill missing intervals from the logged samples: a metric whose per-sample values (0/1 or scores)
    average to the reported value gets its interval (Wilson for 0/1 values, else a percentile bootstrap; see
    ``harness.stats.intervals``). Returns the rows filled."""
    from harness.io import read_jsonl
    from harness.metrics.base import mean_result

    tasks = _task_map(payload)
    filled = 0
    files = _sample_files(path, payload)
    for lm_task, sample_path in files.items():
        task = tasks.get(lm_task, lm_task)
        wanted = [r for r in rows if r.task == task and r.ci_low is None and "@" not in r.metric]
        if not wanted:
            continue
        samples = list(read_jsonl(sample_path))
        for row in wanted:
            values = [s.get(row.metric) for s in samples]
            if not values or not all(isinstance(v, (int, float)) for v in values):  # bools count as 0/1
                continue
            numbers = [float(v) for v in values]
            if abs(sum(numbers) / len(numbers) - row.value) > 1e-6:  # not a mean of per-sample values
                continue
            result = mean_result(row.metric, numbers, higher_is_better=row.higher_is_better)
            if math.isfinite(result.ci_low) and math.isfinite(result.ci_high):
                row.ci_low, row.ci_high = float(result.ci_low), float(result.ci_high)
                row.n = row.n or len(numbers)
                filled += 1
    return filled


def _sample_files(path: Path, payload: dict[str, Any]) -> dict[str, Path]:
    stamp = path.stem.removeprefix("results_")
    found = {}
    for lm_task in payload.get("results", {}):
        candidates = sorted(path.parent.glob(f"samples_{lm_task}_{stamp}.jsonl")) or \
            sorted(path.parent.glob(f"samples_{lm_task}_*.jsonl"))
        if candidates:
            found[lm_task] = candidates[-1]
    return found


def convert_samples(path: Path, payload: dict[str, Any], pred_dir: Path) -> int:
    """Write harness predictions (``<task>.jsonl``) from lm-eval sample logs; returns the records written."""
    from harness.io import read_jsonl, write_jsonl

    tasks = _task_map(payload)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for lm_task, sample_path in _sample_files(path, payload).items():
        for line, sample in enumerate(read_jsonl(sample_path), 1):
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
    from harness.io import read_json, write_json
    from harness.paths import runs_dir
    from harness.results.store import ResultsStore, RunRecord, new_run_id

    path = Path(results_path)
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise DataError(path, "not an lm-eval results object")
    rows = result_rows(payload, path)
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    fingerprint = "lm-eval:sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    earlier = next((r["run_id"] for r in store.runs() if r.get("fingerprint") == fingerprint), None)
    if earlier:
        raise DataError(path, f"already imported as run {earlier}")
    fill_from_samples(path, payload, rows)
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
