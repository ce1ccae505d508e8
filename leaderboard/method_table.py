"""The Methods tab: one row per (base model, method, training setting), its training seeds aggregated.

A method's runs differ by seed; runs that differ in anything else (learning rate, steps, options, split or
limit of the evaluation) are another setting, so a learning-rate sweep is never averaged as if its runs
were seeds. Each row names its seeds and run ids, gives the mean of the metric and the mean Δ against each
run's own base run (``data.base_run_check``), the spread over seeds (sd and range), and how many seeds moved
the metric in its better direction. Rows on part of a test set are shown and marked, after the full ones.
No test is run here: the Studies tab has the paired tests of ``harness study``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from leaderboard.data import (
    BASE_METHODS,
    TEST_SET,
    Board,
    base_run_id,
    method_label,
    public_run,
    short_model,
    test_set_text,
    train_seed,
)

SEED_KEYS = {"seed", "train_seed", "pair_seed", "random_seed", "numpy_seed", "torch_seed", "fewshot_seed"}
# where a run was made and how it was logged, not what was trained
NOT_SETTING = SEED_KEYS | {"run_name", "store", "data_dir", "device", "eval_batch_size", "save_every",
                           "save_total_limit", "log_every", "report_to", "num_workers", "ref_cache", "model", "path",
                           "method", "options"}
# keys the leaderboard keeps beside a submitted or imported config, which say nothing about the recipe
BOOKKEEPING = {"card", "verification", "submitted_by", "submitted_run_id", "base_run_id", "signature", "data",
               "role", "method_info", "source", "note", "base_model"}
SHOWN_ELSEWHERE = {"eval_split", "eval_limit"}  # the Test set column says these
# what tells rows apart and what they found first; the long identity columns after them
COLUMNS = ("Method", "Setting", TEST_SET, "Seeds")
TAIL = ("Runs", "Run IDs", "Base model", "Model", "Citation")


def recipe(run: dict[str, Any]) -> dict[str, str]:
    """What was trained and how it was evaluated, flattened (``train.lr``), without seeds or machine details:
    the public ``config.pipeline`` of a ``harness run``, else the public config less the leaderboard's own
    keys (the same in the store and in a Space's snapshot)."""
    config = public_run(run)["config"]
    source = config["pipeline"] if isinstance(config.get("pipeline"), dict) else {
        k: v for k, v in config.items() if k not in BOOKKEEPING}
    return {key: value for key, value in _flatten(source).items() if key.rsplit(".", 1)[-1] not in NOT_SETTING}


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True, default=str)}


def method_deltas(board: Board, metric: str) -> pd.DataFrame:
    """The Methods table for ``metric`` (display units): a row per (base model, method label, setting, test
    set) with approved runs that report it. A run's value and Δ are its mean over the tasks with the metric
    (Δ over the tasks its base run has too); the row gives their mean over the row's runs, the sd and range of
    the Δ over seeds, and the Effect: how many seeds improved the metric (its direction decides)."""
    better = board.metric(metric).higher_is_better if metric else True
    scale = board.metric(metric).display_scale if metric else 1.0
    cells: dict[str, dict[str, float]] = {}
    for row in board.results:
        if row["metric"] == metric:
            cells.setdefault(row["run_id"], {})[row["task"]] = row["value"]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for run in board.approved_runs():
        if run.get("method") in BASE_METHODS or run["run_id"] not in cells:
            continue
        key = (str(run.get("base_model") or ""), method_label(run), json.dumps(recipe(run), sort_keys=True),
               test_set_text(run), str(run.get("model") or ""))
        groups.setdefault(key, []).append(run)
    settings = _setting_texts(list(groups))
    records = []
    for key, runs in groups.items():
        runs = sorted(runs, key=lambda r: (train_seed(r) is None, train_seed(r) or 0, r["run_id"]))
        values = [_mean(list(cells[r["run_id"]].values())) * scale for r in runs]
        deltas = [d * scale for d in (_run_delta(cells, r, base_run_id(board, r)) for r in runs) if d is not None]
        records.append(_record(key, settings[key], runs, values, deltas, metric, better,
                               board.citations.get(str(runs[0].get("method") or ""), "")))
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, f"Mean Δ {metric}", "Effect", "sd", "Range",
                                                        f"Mean {metric}", *TAIL])
    if frame.empty:
        return frame
    order = frame[f"Mean Δ {metric}"] * (-1 if better else 1)
    frame = frame.assign(_order=order).sort_values("_order", na_position="last", kind="stable")
    frame = frame.sort_values(TEST_SET, key=lambda s: s != "full", kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def _run_delta(cells: dict[str, dict[str, float]], run: dict[str, Any], base: str | None) -> float | None:
    mine, theirs = cells.get(run["run_id"], {}), cells.get(base or "", {})
    shared = [task for task in mine if task in theirs]
    return _mean([mine[t] - theirs[t] for t in shared]) if shared else None


def _record(key: tuple[str, ...], setting: str, runs: list[dict[str, Any]], values: list[float],
            deltas: list[float], metric: str, better: bool, citation: str) -> dict[str, Any]:
    base, label, _, test_set, model = key
    seeds = [train_seed(r) for r in runs]
    mean = round(_mean(deltas), 2) if deltas else math.nan
    spread = round(_sd(deltas), 2) if len(deltas) > 1 else math.nan
    return {
        "Base model": base, "Model": model, "Method": label, "Setting": setting,
        TEST_SET: test_set,
        "Seeds": ", ".join("?" if s is None else str(s) for s in seeds),
        f"Mean {metric}": round(_mean(values), 2), f"Mean Δ {metric}": mean, "sd": spread,
        "Range": f"[{min(deltas):+.2f}, {max(deltas):+.2f}]" if len(deltas) > 1 else "",
        "Effect": effect_text(deltas, better, "seed" if len(set(seeds)) == len(seeds) else "run"), "Runs": len(runs), "Run IDs": ", ".join(r["run_id"] for r in runs),
        "Citation": citation,
    }


def effect_text(deltas: Sequence[float], better: bool, unit: str = "seed") -> str:
    """``better in 5 of 5 seeds``, ``worse in 3 of 5 seeds``: the count of seeds that moved the metric in
    its better (or worse) direction, whichever the mean took (``runs`` when a seed repeats)."""
    if not deltas:
        return "no base run"
    mean = _mean(list(deltas))
    if mean == 0:
        return "no change"
    improved = (mean > 0) == better
    agreeing = sum(1 for d in deltas if d != 0 and (d > 0) == (mean > 0))
    return f"{'better' if improved else 'worse'} in {agreeing} of {len(deltas)} {unit}{'s' if len(deltas) > 1 else ''}"


def _setting_texts(keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """For rows of one (base model, method), the recipe keys whose values tell them apart (``lr=2.5e-05``);
    rows that differ only in their model or test set need no setting text."""
    out = {}
    for key in keys:
        siblings = [k for k in keys if k[:2] == key[:2]]
        recipes = [json.loads(k[2]) for k in siblings]
        names = sorted({name for r in recipes for name in r})
        differing = [n for n in names if len({r.get(n) for r in recipes}) > 1 and n not in SHOWN_ELSEWHERE]
        mine = json.loads(key[2])
        out[key] = ", ".join(f"{n.rsplit('.', 1)[-1]}={_plain(mine.get(n))}" for n in differing)[:120]
    return out


def _plain(text: str | None) -> str:
    value = None if text is None else json.loads(text)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _sd(values: Sequence[float]) -> float:
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


CHART_ROWS = 20


def forest_rows(frame: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """The Methods chart's rows (the table's first ``CHART_ROWS`` with a Δ): the mean Δ at the dot, the range
    over seeds as the bar; colored only when every seed moved the metric the same way (``significant`` here
    means no more than that); an open dot for a row on part of a test set."""
    out = []
    for record in frame.to_dict("records"):
        mean = record[f"Mean Δ {metric}"]
        if isinstance(mean, float) and math.isnan(mean):
            continue
        if len(out) == CHART_ROWS:
            break
        low, high = mean, mean
        if record["Range"]:
            low, high = (float(x) for x in record["Range"].strip("[]").split(", "))
        partial = record[TEST_SET] != "full"
        label = record["Method"] + (f" {record['Setting']}" if record["Setting"] else "")
        label += f" · {short_model(record['Base model'])}" if len(set(frame["Base model"])) > 1 else ""
        seeds = record["Runs"]
        out.append({"label": label + (" (partial)" if partial else ""), "effect": mean, "low": low, "high": high,
                    "mark": f" n={seeds}", "significant": seeds > 1 and (low > 0 or high < 0), "hollow": partial})
    return out
