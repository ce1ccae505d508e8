"""Compare runs side by side and export them as CSV, JSON or markdown.

The comparison is a wide table: one row per run, one column per ``task/metric``. Exports keep values in
natural units (accuracy 0.734) except markdown and the printed table, which show values and 95% intervals
times the metric's ``display_scale`` (73.4 [70.1, 76.8]), the way papers print them.

Exported files are read by spreadsheets and markdown renderers, and names come from submitters: CSV cells
that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) are prefixed with ``'``,
and markdown cells have HTML and link syntax escaped. Every export carries a ``status`` column, and only
approved runs are written unless the caller asks for other statuses.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_write, standard_json

RUN_COLUMNS = ("run_id", "model", "method", "created_at")
EXPORT_COLUMNS = ("run_id", "model", "method", "status", "created_at")  # files carry the moderation status
PUBLIC_STATUSES = ("approved",)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MD_SPECIAL = re.compile(r"([\\`\[\]|])")  # code spans, links and images, cell breaks
EXPORT_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}


def partial_reason(run: dict[str, Any]) -> str:
    """Why a stored run covers only part of its test sets ('' for a full run): an evaluation limit (its own, a
    pipeline's or lm-eval's), or data records (``harness.tasks.identity``) whose items are not the official
    split."""
    from harness.tasks.identity import partial_tasks

    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    limits = [(config.get("signature") or {}).get("limit"), config.get("limit"),
              (config.get("lm_eval") or {}).get("limit"), (config.get("pipeline") or {}).get("eval_limit"),
              config.get("lm_eval_limit"), config.get("eval_limit")]  # the last two: a public snapshot's
    limit = next((v for v in limits if v not in (None, "", 0)), None)
    reasons = [] if limit is None else [f"limit {limit}"]
    reasons += [f"{task}: {why}" for task, why in partial_tasks(config.get("data")).items()
                if limit is None or why != f"limit {limit}"]
    return "; ".join(reasons)


def metric_columns(results: Sequence[dict[str, Any]]) -> list[str]:
    """``task/metric`` column names in a stable order: by task, then metric."""
    return sorted({f"{r['task']}/{r['metric']}" for r in results})


def wide_rows(results: Sequence[dict[str, Any]], *, display: bool = False,
              run_columns: Sequence[str] = RUN_COLUMNS) -> list[dict[str, Any]]:
    """One row per run. ``display`` formats cells as scaled ``value [low, high]`` strings."""
    by_run: dict[str, dict[str, Any]] = {}
    for r in results:
        row = by_run.setdefault(r["run_id"], {c: r.get(c) for c in run_columns})
        key = f"{r['task']}/{r['metric']}"
        row[key] = _display_cell(r) if display else r["value"]
    columns = metric_columns(results)
    return [{**{c: row.get(c) for c in run_columns}, **{c: row.get(c) for c in columns}} for row in by_run.values()]


def _display_cell(r: dict[str, Any]) -> str:
    scale = display_scale(r["metric"])
    text = f"{r['value'] * scale:.2f}"
    if r.get("ci_low") is not None and r.get("ci_high") is not None:
        text += f" [{r['ci_low'] * scale:.2f}, {r['ci_high'] * scale:.2f}]"
    return text


def display_scale(metric: str) -> float:
    """The registered metric's ``display_scale`` (``name@ablation`` uses its base metric); 1 if unknown."""
    from harness.metrics import METRICS

    base = metric.split("@")[0]
    if base not in METRICS:
        return 1.0
    try:
        return METRICS.get(base).display_scale
    except HarnessError:
        return 1.0


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(results: Sequence[dict[str, Any]]) -> str:
    rows = wide_rows(results, run_columns=EXPORT_COLUMNS)
    columns = [*EXPORT_COLUMNS, *metric_columns(results)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[csv_cell(c) for c in columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows({csv_cell(k): csv_cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def prediction_ids(run: dict[str, Any], tasks: Sequence[str]) -> dict[str, list[str]]:
    """Per task, the ids of the items a local run answered (``<predictions_dir>/predictions/<task>.jsonl``): a
    leaderboard submission of the export is checked against the official split by them. A task whose file is
    missing or unreadable is left out (the submission then counts as unverified for it)."""
    from harness.core.errors import DataError
    from harness.core.io import read_jsonl

    folder = run.get("predictions_dir")
    if not folder or run.get("source") == "submission":
        return {}
    out = {}
    for task in dict.fromkeys(tasks):
        path = Path(folder) / "predictions" / f"{task}.jsonl"
        if not path.is_file():
            continue
        try:
            ids = [str(r["id"]) for r in read_jsonl(path, skip_partial_last=True) if isinstance(r, dict) and "id" in r]
        except (DataError, OSError):
            continue
        if ids:
            out[task] = list(dict.fromkeys(ids))
    return out


def to_json(runs: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]]) -> str:
    """Every run with its provenance, its result rows (long format, natural units) and, for a local run, the
    ids of the items it answered per task (``predictions``, what a leaderboard submission is checked by)."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    keep = ("task", "task_version", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better")
    for r in results:
        by_run.setdefault(r["run_id"], []).append({k: r.get(k) for k in keep})
    payload = []
    for run in runs:
        if run["run_id"] not in by_run:
            continue
        ids = prediction_ids(run, [r["task"] for r in by_run[run["run_id"]]])
        payload.append({**run, "results": by_run[run["run_id"]], **({"predictions": ids} if ids else {})})
    return standard_json(payload, indent=2, default=str) + "\n"  # no NaN or Infinity: standard JSON


def to_markdown(results: Sequence[dict[str, Any]]) -> str:
    rows = wide_rows(results, display=True, run_columns=EXPORT_COLUMNS)
    columns = [*EXPORT_COLUMNS, *metric_columns(results)]
    lines = ["| " + " | ".join(_md(c) for c in columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_md(row.get(c)) if c in EXPORT_COLUMNS else _md_number(row.get(c))
                                    for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    """A markdown table cell that renders as the literal text: HTML escaped, markdown syntax backslashed."""
    if value is None:
        return "-"
    text = " ".join(str(value).split())  # a newline would end the table row
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _md_number(value: Any) -> str:
    return "-" if value is None else str(value)  # our own formatted numbers: nothing to escape


def export(path: str | Path, runs: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], *,
           statuses: Sequence[str] | None = PUBLIC_STATUSES) -> str:
    """Write the comparison to ``path``; the format follows its suffix. Returns the format name.

    Only runs whose moderation status is in ``statuses`` are written (default: approved); ``None`` keeps all.
    """
    path = Path(path)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HarnessError(f"{path.name}: cannot tell the export format from '{path.suffix}' "
                           f"(use {', '.join(EXPORT_FORMATS)})")
    if statuses is not None:
        runs = [r for r in runs if (r.get("status") or "approved") in statuses]
        results = [r for r in results if (r.get("status") or "approved") in statuses]
    text = {"csv": lambda: to_csv(results), "json": lambda: to_json(runs, results),
            "markdown": lambda: to_markdown(results)}[fmt]()
    with atomic_write(path) as handle:
        handle.write(text)
    return fmt


# The columns papers report, per task family; a task may name its own (``Task.headline`` when it has one,
# else HEADLINE_BY_TASK). Only metrics the task declares are kept.
HEADLINE_BY_FAMILY = {"vqa": ("closed_accuracy", "open_recall"),
                      "report": ("bleu", "rouge_l", "meteor", "hallucination_rate")}
HEADLINE_BY_TASK = {
    # exact factuality on the synthetic suite: reports are read back into findings (harness/findings/synthetic.py)
    # (laterality_accuracy is left out: its n is the findings a report asserts, which a model that stops
    # reporting drives towards 0, so its interval can span [0, 100]; every headline n is reports)
    # then the paper's n-gram metrics, so a table shows whether they track factuality (docs/testbed.md)
    "synth_report": ("finding_f1", "finding_precision", "finding_recall", "false_finding_rate", "bleu", "rouge_l",
                     "meteor"),
}


def headline_metrics(task: Any) -> tuple[str, ...]:
    """The metrics a comparison table shows for ``task``: its own headline, else its family's, else its first 4."""
    declared = tuple(task.metrics)
    for candidates in (getattr(task, "headline", None), HEADLINE_BY_TASK.get(task.name),
                       HEADLINE_BY_FAMILY.get(task.family)):
        kept = tuple(m for m in candidates or () if m in declared)
        if kept:
            return kept
    return declared[:4]
