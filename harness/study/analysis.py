"""The study's comparison: per method entry, task and headline metric, over seeds and items.

For each (method, task, metric):

- ``mean``, ``sd``: the metric's value (as ``harness eval`` reports it, e.g. corpus BLEU) over the
  method's training seeds; ``sd`` uses ``n - 1`` and is None with one seed (the base model has one).
- ``delta_vs_base``, ``delta_vs_ref``: ``mean`` minus the base model's value / the reference method's mean.
- ``p_vs_base``, ``p_vs_ref``: the paired sign-flip test (``harness.study.stats``) on per-item
  differences: for each item, the method's per-sample score averaged over its seeds minus the base's
  score (or the reference's, averaged over its seeds), over the items every compared run answered.
- ``mde``: the minimum detectable effect of that test against the base (alpha 0.05 two-sided, power 0.8)
  from the standard deviation of those per-item differences and ``n_items``.

Per-sample scores are recomputed from each run's stored predictions with the registered metric
(``n_boot=0``); a corpus metric's per-sample score (sentence BLEU) does not average to its corpus value,
so its test and MDE are in per-sample units while its mean and delta are corpus values, as in
``harness regress``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.io import read_json, write_json
from harness.study import stats
from harness.study.runner import BASE, Study

log = logging.getLogger(__name__)

RECORD_KEYS = ("method", "task", "metric", "mean", "sd", "n_seeds", "n_items", "delta_vs_base", "p_vs_base",
               "delta_vs_ref", "p_vs_ref", "mde")


def run_scores(run_id: str, tasks: list[str], store, cache_dir=None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{task: {metric: {"value", "higher_is_better", "items": {id: score}}}}`` for a stored run's headline metrics.

    Cached as JSON in ``cache_dir`` (scores never change for a finished run).
    """
    cached = cache_dir / f"{run_id}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        data = read_json(cached)
        if all(t in data for t in tasks):
            return data
    from harness.metrics import compute_metrics, get_metric
    from harness.regress.sources import load_source
    from harness.results.compare import headline_metrics
    from harness.tasks import get_task

    _, predictions = load_source(run_id, store=store)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for task_name in tasks:
        records = sorted((r for (t, _), r in predictions.items() if t == task_name), key=lambda r: str(r["id"]))
        if not records:
            raise HarnessError(f"run {run_id} has no predictions for task '{task_name}'")
        out[task_name] = {}
        for name in headline_metrics(get_task(task_name)):
            metric = get_metric(name)
            chosen = [r for r in records if metric.subset is None or r["answer_type"] == metric.subset]
            if not chosen:
                continue
            result = compute_metrics([name], [str(r["prediction"]) for r in chosen],
                                     [str(r["reference"]) for r in chosen], n_boot=0)[name]
            items = {}
            if len(result.per_sample) == len(chosen):
                items = {str(r["id"]): float(s) for r, s in zip(chosen, result.per_sample)
                         if s is not None and math.isfinite(float(s))}
            else:
                log.warning("%s/%s gives %d per-sample scores for %d items: no paired test", task_name, name,
                            len(result.per_sample), len(chosen))
            out[task_name][name] = {"value": float(result.value), "higher_is_better": metric.higher_is_better,
                                    "items": items}
    if cached is not None:
        write_json(cached, out, indent=None)
    return out


def _seed_average(scores: list[dict[str, float]]) -> dict[str, float]:
    """Per item, the mean score over the runs (seeds); only items every run scored."""
    shared = set.intersection(*(set(s) for s in scores)) if scores else set()
    return {item: float(np.mean([s[item] for s in scores])) for item in shared}


def _paired(a: dict[str, float], b: dict[str, float]) -> np.ndarray:
    items = sorted(set(a) & set(b))
    return np.array([a[i] - b[i] for i in items], dtype=np.float64)


def compare(study: Study, store, *, n_perm: int = 20000) -> list[dict[str, Any]]:
    """One record per (method entry, task, metric): the keys of ``RECORD_KEYS`` plus ``ci_low``/``ci_high``
    (the 95% interval of ``delta_vs_base``) and ``higher_is_better``."""
    tasks = list(study.state["settings"]["tasks"])
    base_id = study.state["base_run_id"]
    if not base_id:
        raise HarnessError(f"study {study.study_id} has no base evaluation yet: run it first")
    cache = study.folder / "scores"
    base = run_scores(base_id, tasks, store, cache)
    labels = [label for label in study.state["methods"]]
    per_label: dict[str, list[dict]] = {}
    for label in labels:
        if label == BASE:
            continue
        runs = study.runs_of(label)
        if runs:
            per_label[label] = [run_scores(r["run_id"], tasks, store, cache) for r in runs]
        else:
            log.warning("study %s: no finished run of %s yet", study.study_id, label)
    reference = study.state.get("reference")
    records = []
    for task in tasks:
        for metric, base_cell in base.get(task, {}).items():
            ref_runs = per_label.get(reference, [])
            ref_cells = [s[task][metric] for s in ref_runs if metric in s.get(task, {})]
            ref_mean = float(np.mean([c["value"] for c in ref_cells])) if ref_cells else None
            ref_items = _seed_average([c["items"] for c in ref_cells]) if ref_cells else None
            for label in labels:
                if label == BASE:
                    cells = [base_cell]
                elif label in per_label:
                    cells = [s[task][metric] for s in per_label[label] if metric in s.get(task, {})]
                else:
                    continue
                if not cells:
                    continue
                records.append(_record(label, task, metric, cells, base_cell, ref_mean, ref_items,
                                       is_base=label == BASE, is_ref=label == reference, n_perm=n_perm))
    return records


def _record(label, task, metric, cells, base_cell, ref_mean, ref_items, *, is_base, is_ref, n_perm) -> dict:
    values = [c["value"] for c in cells]
    mean = float(np.mean(values))
    items = _seed_average([c["items"] for c in cells])
    record: dict[str, Any] = {
        "method": label, "task": task, "metric": metric, "mean": mean,
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None, "n_seeds": len(values),
        "n_items": len(items), "delta_vs_base": None, "p_vs_base": None, "delta_vs_ref": None, "p_vs_ref": None,
        "mde": None, "ci_low": None, "ci_high": None, "higher_is_better": base_cell["higher_is_better"],
    }
    if not is_base:
        diff = _paired(items, base_cell["items"])
        record["n_items"] = int(diff.size)
        record["delta_vs_base"] = mean - base_cell["value"]
        if diff.size:
            record["p_vs_base"] = stats.sign_flip_test(diff, n_perm=n_perm)
        if diff.size > 1:
            sd = float(diff.std(ddof=1))
            record["mde"] = stats.minimum_detectable_effect(sd, int(diff.size))
            low, high = stats.mean_interval(diff)
            record["ci_low"] = record["delta_vs_base"] - (high - low) / 2
            record["ci_high"] = record["delta_vs_base"] + (high - low) / 2
    if ref_items is not None and not is_ref:
        diff = _paired(items, ref_items)
        record["delta_vs_ref"] = mean - ref_mean
        if diff.size:
            record["p_vs_ref"] = stats.sign_flip_test(diff, n_perm=n_perm)
    return record


def format_rows(records: list[dict[str, Any]], reference: str | None) -> list[dict[str, Any]]:
    """Display rows (values x the metric's display scale), one per record."""
    from harness.results.compare import display_scale

    rows = []
    for r in records:
        scale = display_scale(r["metric"])
        arrow = "" if r["higher_is_better"] else " (lower better)"
        rows.append({
            "task/metric": f"{r['task']}/{r['metric']}{arrow}",
            "method": r["method"],
            "mean ± sd": _num(r["mean"], scale) + ("" if r["sd"] is None else f" ± {r['sd'] * scale:.1f}"),
            "Δ base (p)": _delta(r["delta_vs_base"], r["p_vs_base"], scale),
            f"Δ {reference} (p)": _delta(r["delta_vs_ref"], r["p_vs_ref"], scale),
            "MDE": _num(r["mde"], scale),
            "seeds": r["n_seeds"],
            "items": r["n_items"],
        })
    return rows


def _num(value, scale) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * scale:.1f}"


def _delta(delta, p, scale) -> str:
    if delta is None:
        return "-"
    text = f"{delta * scale:+.1f}"
    return text if p is None else f"{text} (p={p:.3g})"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no results)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def json_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with NaN turned into None (strict JSON)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]
