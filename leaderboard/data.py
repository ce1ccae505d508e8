"""The leaderboard's data: runs and results from the store or a snapshot, shaped into tables.

Nothing here imports the harness at module level, so the module also runs inside an exported Space,
which reads a JSON snapshot instead of the SQLite store. Values are stored in natural units (0.734);
tables show them times the metric's ``display_scale`` (73.4), as papers print them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SNAPSHOT_FORMAT = "harness-results/1"
BASE_METHODS = {None, "", "base", "none", "zero-shot", "zero_shot"}  # a base model's own run has no method


@dataclass(frozen=True)
class Tab:
    """One comparison tab: which tasks (by family) and which metrics it shows, and the default columns."""

    key: str
    title: str
    family: str | None
    metrics: Callable[[str], bool]
    defaults: tuple[str, ...] = ()


def _is_vqa_metric(metric: str) -> bool:
    return metric.startswith(("closed_", "open_"))


def _is_nlg_metric(metric: str) -> bool:
    return metric in {"bleu", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "meteor", "cider"}


def _is_factuality_metric(metric: str) -> bool:
    return metric.startswith("chexpert_") or metric == "hallucination_rate"


TABS = (
    Tab("vqa", "Med-VQA", "vqa", _is_vqa_metric, ("closed_accuracy", "open_recall")),
    Tab("report", "Report generation", "report", _is_nlg_metric, ("bleu", "rouge_l", "meteor", "cider")),
    Tab("factuality", "Factuality & clinical efficacy", "report", _is_factuality_metric,
        ("chexpert_f1_micro", "chexpert_f1_macro", "hallucination_rate")),
)
TAB_BY_KEY = {tab.key: tab for tab in TABS}

ID_COLUMNS = ("Model", "Method", "Base model", "Type")
RUN_ID = "Run ID"
AVERAGE = "Average"


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool = True
    display_scale: float = 1.0


@dataclass
class Board:
    """Everything the app shows: runs, their result rows, and metadata about tasks, metrics and methods."""

    runs: list[dict[str, Any]]
    results: list[dict[str, Any]]
    task_families: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    citations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: Any) -> Board:
        runs = [r for r in store.runs() if r.get("status") != "rejected"]
        results = store.results()
        return cls(runs, results, *_harness_metadata(results))

    @classmethod
    def from_snapshot(cls, path: str | Path) -> Board:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        runs, results = [], []
        for run in payload.get("runs", []):
            rows = run.get("results", [])
            run = {k: v for k, v in run.items() if k != "results"}
            runs.append(run)
            results += [{**row, **{k: run.get(k) for k in ("run_id", "model", "base_model", "method", "model_type",
                                                            "created_at", "status", "source")}} for row in rows]
        metrics = {k: MetricInfo(**v) for k, v in payload.get("metrics", {}).items()}
        return cls(runs, results, payload.get("tasks", {}), metrics, payload.get("methods", {}))

    def to_snapshot(self, status: str = "approved") -> dict[str, Any]:
        """A JSON-able snapshot of the runs with ``status`` (and their metadata), for an exported Space."""
        keep = ("task", "task_version", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better")
        by_run: dict[str, list[dict[str, Any]]] = {}
        for row in self.results:
            by_run.setdefault(row["run_id"], []).append({k: row.get(k) for k in keep})
        runs = [
            {**{k: v for k, v in run.items() if k != "predictions_dir"}, "results": by_run.get(run["run_id"], [])}
            for run in self.runs if run.get("status") == status
        ]
        used = {r["metric"] for run in runs for r in run["results"]}
        return {
            "format": SNAPSHOT_FORMAT,
            "runs": runs,
            "tasks": self.task_families,
            "metrics": {m: vars(self.metric(m)) for m in sorted(used)},
            "methods": self.citations,
        }

    def metric(self, name: str) -> MetricInfo:
        if name in self.metrics:
            return self.metrics[name]
        stored = next((r["higher_is_better"] for r in self.results if r["metric"] == name), True)
        return MetricInfo(bool(stored), 1.0)

    def family(self, task: str) -> str:
        if task in self.task_families:
            return self.task_families[task]
        return "report" if any(_is_nlg_metric(r["metric"]) for r in self.results if r["task"] == task) else "vqa"

    def run(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs if r["run_id"] == run_id), None)

    def approved_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r.get("status", "approved") == "approved"]

    def pending_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r.get("status") == "pending"]

    def columns(self, tab: Tab) -> list[str]:
        """``task/metric`` columns of a tab present in the approved results (ablations are left out)."""
        approved = {r["run_id"] for r in self.approved_runs()}
        found = {
            (r["task"], r["metric"]) for r in self.results
            if r["run_id"] in approved and "@" not in r["metric"] and tab.metrics(r["metric"])
            and (tab.family is None or self.family(r["task"]) == tab.family)
        }
        return [f"{t}/{m}" for t, m in sorted(found)]

    def default_columns(self, tab: Tab) -> list[str]:
        columns = self.columns(tab)
        chosen = [c for c in columns if c.split("/", 1)[1] in tab.defaults]
        return chosen or columns


def _harness_metadata(results: Sequence[dict[str, Any]]) -> tuple[dict, dict, dict]:
    """Task families, metric directions and scales, and method citations from the harness registries."""
    from harness.tasks import TASKS

    families, metrics, citations = {}, {}, {}
    for name in TASKS.names():
        try:
            families[name] = TASKS.get(name).family
        except Exception:  # a broken plugin task should not take the board down
            continue
    for name in {r["metric"] for r in results}:
        metrics[name] = _metric_info(name, results)
    for name, citation in method_citations().items():
        citations[name] = citation
    return families, metrics, citations


def _metric_info(name: str, results: Sequence[dict[str, Any]]) -> MetricInfo:
    from harness.metrics import METRICS

    stored = next((bool(r["higher_is_better"]) for r in results if r["metric"] == name), True)
    base = name.split("@")[0]
    if base in METRICS:
        try:
            metric = METRICS.get(base)
            return MetricInfo(bool(metric.higher_is_better), float(metric.display_scale))
        except Exception:
            pass
    return MetricInfo(stored, 1.0)


def method_citations() -> dict[str, str]:
    """Each registered method's citation; a method whose module fails to import gets an empty one."""
    from harness.methods import METHODS

    out = {}
    for name in METHODS.names():
        try:
            out[name] = str(getattr(METHODS.get(name), "citation", "") or "")
        except Exception:
            out[name] = ""
    return out


@dataclass
class Filters:
    """What the user narrowed the table to; empty lists mean no filter."""

    search: str = ""
    base_models: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    model_types: list[str] = field(default_factory=list)

    def keep(self, run: dict[str, Any]) -> bool:
        if self.base_models and (run.get("base_model") or "") not in self.base_models:
            return False
        if self.methods and (run.get("method") or "") not in self.methods:
            return False
        if self.model_types and (run.get("model_type") or "") not in self.model_types:
            return False
        needle = self.search.strip().lower()
        if needle:
            haystack = " ".join(str(run.get(k) or "") for k in ("model", "method", "base_model", "model_type", "run_id"))
            return needle in haystack.lower()
        return True


def choices(board: Board) -> dict[str, list[str]]:
    """Values for the filter dropdowns (from approved runs)."""
    runs = board.approved_runs()

    def values(key: str) -> list[str]:
        return sorted({str(r.get(key)) for r in runs if r.get(key)})

    tasks = sorted({r["task"] for r in board.results})
    return {"base_models": values("base_model"), "methods": values("method"), "model_types": values("model_type"),
            "tasks": tasks}


def base_run_values(board: Board) -> dict[tuple[str, str, str], float]:
    """(model, task, metric) -> value of that model's own (method-less) approved run, the latest one."""
    out: dict[tuple[str, str, str], tuple[str, float]] = {}
    approved = {r["run_id"]: r for r in board.approved_runs()}
    for row in board.results:
        run = approved.get(row["run_id"])
        if run is None or run.get("method") not in BASE_METHODS:
            continue
        key = (run["model"], row["task"], row["metric"])
        stamp = str(run.get("created_at") or "")
        if key not in out or stamp >= out[key][0]:
            out[key] = (stamp, row["value"])
    return {k: v for k, (_, v) in out.items()}


def wide_table(board: Board, tab: Tab, filters: Filters | None = None, columns: Sequence[str] | None = None, *,
               show_ci: bool = False, show_delta: bool = True, sort_by: str | None = None,
               descending: bool | None = None) -> pd.DataFrame:
    """One row per approved run: identity, the chosen ``task/metric`` columns (display units), the average,
    and optionally each cell's 95% interval and its delta against the run's base model."""
    filters = filters or Filters()
    columns = [c for c in (columns if columns is not None else board.default_columns(tab)) if c in board.columns(tab)]
    if filters.tasks:
        columns = [c for c in columns if c.split("/", 1)[0] in filters.tasks]
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for row in board.results:
        cells.setdefault(row["run_id"], {})[f"{row['task']}/{row['metric']}"] = row
    bases = base_run_values(board) if show_delta else {}
    records = []
    for run in board.approved_runs():
        mine = cells.get(run["run_id"], {})
        if not filters.keep(run) or not any(c in mine for c in columns):
            continue
        record: dict[str, Any] = {
            "Model": run.get("model") or "", "Method": run.get("method") or "",
            "Base model": run.get("base_model") or "", "Type": run.get("model_type") or "",
        }
        for col in columns:
            record[col] = _scaled(board, mine.get(col), "value")
        record[AVERAGE] = _average(board, columns, record)
        for col in columns if show_ci else ():
            record[f"{col} CI"] = _ci_text(board, mine.get(col))
        for col in columns if show_delta else ():
            task, metric = col.split("/", 1)
            base = bases.get((run.get("base_model") or "", task, metric))
            value = mine.get(col)
            has_base = base is not None and value is not None and run.get("base_model") != run.get("model")
            scale = board.metric(metric).display_scale
            record[f"{col} Δ"] = round((value["value"] - base) * scale, 2) if has_base else math.nan
        record[RUN_ID] = run["run_id"]
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=table_columns(columns, show_ci, show_delta))
    return sort_table(board, frame, sort_by, descending)


def table_columns(columns: Sequence[str], show_ci: bool, show_delta: bool) -> list[str]:
    return [*ID_COLUMNS, *columns, AVERAGE, *(f"{c} CI" for c in columns if show_ci),
            *(f"{c} Δ" for c in columns if show_delta), RUN_ID]


def sort_table(board: Board, frame: pd.DataFrame, sort_by: str | None, descending: bool | None) -> pd.DataFrame:
    """Sort by a column; by default the best first (the metric's direction decides what best means)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    sort_by = sort_by if sort_by in frame.columns else AVERAGE
    if descending is None:
        metric = sort_by.split("/", 1)[1].split(" ")[0] if "/" in sort_by else None
        descending = board.metric(metric).higher_is_better if metric else sort_by == AVERAGE
    frame = frame.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def _scaled(board: Board, row: dict[str, Any] | None, key: str) -> float:
    if row is None or row.get(key) is None:
        return math.nan
    return round(row[key] * board.metric(row["metric"]).display_scale, 2)


def _ci_text(board: Board, row: dict[str, Any] | None) -> str:
    if row is None or row.get("ci_low") is None or row.get("ci_high") is None:
        return ""
    return f"[{_scaled(board, row, 'ci_low'):.2f}, {_scaled(board, row, 'ci_high'):.2f}]"


def _average(board: Board, columns: Sequence[str], record: dict[str, Any]) -> float:
    """Mean of the higher-is-better columns (all columns when none is); blank when a run lacks one.

    Averaging a lower-is-better rate (hallucination rate) with accuracies would reward hallucinating.
    """
    usable = [c for c in columns if board.metric(c.split("/", 1)[1]).higher_is_better] or list(columns)
    values = [record[c] for c in usable]
    if not values or any(isinstance(v, float) and math.isnan(v) for v in values):
        return math.nan
    return round(sum(values) / len(values), 2)


def pending_table(board: Board) -> pd.DataFrame:
    """Submissions waiting for ``harness leaderboard approve``: identity and what they report."""
    counts: dict[str, set[str]] = {}
    for row in board.results:
        counts.setdefault(row["run_id"], set()).add(row["task"])
    records = [
        {"Model": r.get("model") or "", "Method": r.get("method") or "", "Base model": r.get("base_model") or "",
         "Tasks": ", ".join(sorted(counts.get(r["run_id"], ()))), "Submitted": str(r.get("created_at") or ""),
         "Status": "pending", RUN_ID: r["run_id"]}
        for r in board.pending_runs()
    ]
    return pd.DataFrame.from_records(
        records, columns=["Model", "Method", "Base model", "Tasks", "Submitted", "Status", RUN_ID])


def method_deltas(board: Board, metric: str) -> pd.DataFrame:
    """Per method: mean delta against the base model on ``metric`` (display units) over runs and tasks."""
    bases = base_run_values(board)
    approved = {r["run_id"]: r for r in board.approved_runs()}
    deltas: dict[str, list[float]] = {}
    runs_per_method: dict[str, set[str]] = {}
    for row in board.results:
        run = approved.get(row["run_id"])
        if run is None or row["metric"] != metric or run.get("method") in BASE_METHODS:
            continue
        base = bases.get((run.get("base_model") or "", row["task"], metric))
        if base is None:
            continue
        scale = board.metric(metric).display_scale
        deltas.setdefault(run["method"], []).append((row["value"] - base) * scale)
        runs_per_method.setdefault(run["method"], set()).add(run["run_id"])
    methods = sorted(set(board.citations) | {r.get("method") for r in approved.values()} - BASE_METHODS)
    records = []
    for name in methods:
        values = deltas.get(name, [])
        records.append({
            "Method": name,
            f"Mean Δ {metric}": round(sum(values) / len(values), 2) if values else math.nan,
            "Comparisons": len(values),
            "Runs": len(runs_per_method.get(name, ())),
            "Citation": board.citations.get(name, ""),
        })
    frame = pd.DataFrame.from_records(records, columns=["Method", f"Mean Δ {metric}", "Comparisons", "Runs",
                                                        "Citation"])
    return frame.sort_values(f"Mean Δ {metric}", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True)


def run_results(board: Board, run_id: str) -> pd.DataFrame:
    rows = [r for r in board.results if r["run_id"] == run_id]
    records = [
        {"Task": r["task"], "Metric": r["metric"], "Value": _scaled(board, r, "value"),
         "CI low": _scaled(board, r, "ci_low"), "CI high": _scaled(board, r, "ci_high"),
         "n": r.get("n") if r.get("n") is not None else math.nan}
        for r in rows
    ]
    return pd.DataFrame.from_records(records, columns=["Task", "Metric", "Value", "CI low", "CI high", "n"])
