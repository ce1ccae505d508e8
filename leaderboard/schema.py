"""The submission schema: what a results file must look like before the leaderboard stores it.

A submission is the harness's own JSON export, wrapped with a format tag::

    {"format": "harness-results/1",
     "runs": [{"model": "...", "base_model": "...", "method": "dpo", "model_type": "llava",
               "config": {...}, "versions": {"torch": "2.4.0"}, "harness_version": "0.1.0",
               "git_commit": "abc123", "seed": 0,
               "results": [{"task": "vqa_rad", "metric": "closed_accuracy", "value": 0.71,
                            "ci_low": 0.66, "ci_high": 0.76, "n": 272, "higher_is_better": true,
                            "task_version": "1.0"}]}]}

A bare list of runs (what ``harness results --export runs.json`` writes) is accepted too. Everything a
submitter writes is data: strings lose control and invisible characters (``leaderboard.names``) and are
length-capped here, and every place the app shows them renders text, never HTML. Every number in the file is
finite and the config keys the leaderboard reads have their declared type and range (``leaderboard.fields``).
A run may list the ids of its ``predictions`` per task; the leaderboard computes the run's data records and
provenance from them (``leaderboard.provenance``), never from what the config declares. Fields the
submitter must not set (status, source, predictions_dir, fingerprint, created_at, run_id) are ignored: a
submission is always stored as ``pending``, ``source='submission'``, with a new run id and no predictions
folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import DataError
from harness.results.store import ResultRow, RunRecord
from leaderboard.fields import check_config, check_numbers, parse_float, written
from leaderboard.names import skeleton, strip_invisible

FORMAT = "harness-results/1"
MAX_BYTES = 1_000_000  # a results file is small; anything bigger is not a results file
MAX_RUNS = 50
MAX_RESULTS_PER_RUN = 500
MAX_NAME = 200
MAX_CONFIG_BYTES = 32_000
MAX_N = 10_000_000
MAX_ID = 200  # characters of a prediction's item id
MAX_DEPTH = 32  # nesting of a results file; a deeper file is not a results file (and can exhaust the parser)

# Natural-unit ranges. Every built-in metric is a rate in [0, 1] except CIDEr (0..10 by construction).
METRIC_RANGES: dict[str, tuple[float, float]] = {"cider": (0.0, 10.0)}
DEFAULT_RANGE = (0.0, 1.0)

RUN_STRING_FIELDS = ("base_model", "method", "model_type", "harness_version", "git_commit")
IGNORED_RUN_FIELDS = ("status", "source", "predictions_dir", "fingerprint", "created_at", "run_id")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_ABLATION = re.compile(r"^[a-z0-9_]{1,40}$")


@dataclass
class Submission:
    """One validated run, ready for ``ResultsStore.add_run``."""

    run: RunRecord
    results: list[ResultRow]
    predictions: dict[str, list[str]] = field(default_factory=dict)  # task -> submitted item ids


def clean_text(value: str, limit: int = MAX_NAME) -> str:
    """NFC-normalize, drop control, bidi and other invisible characters (``leaderboard.names``: word joiners,
    soft hyphens, Hangul fillers...), collapse whitespace, cap the length.

    Markup such as ``<img ...>`` is kept as literal text: escaping is the renderer's job (the app shows
    these strings only in text cells), and keeping them lets the submitter recognise their own name.
    """
    text = unicodedata.normalize("NFC", value)
    text = strip_invisible(_CONTROL.sub("", text))
    text = " ".join(text.split())
    return text[:limit]


def _known_task_metrics() -> dict[str, set[str]]:
    from harness.tasks import TASKS, get_task

    return {name: set(get_task(name).metrics) for name in TASKS.names()}


def registered_direction(metric: str) -> bool | None:
    """The registry's ``higher_is_better`` for ``metric`` (``name@ablation`` uses its base); None if unknown."""
    from harness.metrics import METRICS

    base = metric.split("@")[0]
    if base not in METRICS:
        return None
    try:
        return bool(METRICS.get(base).higher_is_better)
    except Exception:  # a broken plugin must not take the validator down
        return None


def fingerprint(run: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """A content hash: the same model, method and numbers give the same fingerprint, whatever the run id, and
    whatever look-alike spelling of the names (``leaderboard.names.skeleton``)."""
    identity = {k: skeleton(run[k]) if isinstance(run.get(k), str) else run.get(k)
                for k in ("model", "base_model", "method", "model_type")}
    rows = sorted(
        (r["task"], r["metric"], round(r["value"], 9),
         None if r.get("ci_low") is None else round(r["ci_low"], 9),
         None if r.get("ci_high") is None else round(r["ci_high"], 9), r.get("n"))
        for r in results
    )
    blob = json.dumps({"run": identity, "results": rows}, sort_keys=True, ensure_ascii=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def parse_bytes(data: bytes, source: str) -> Any:
    if len(data) > MAX_BYTES:
        raise DataError(source, f"file is {len(data):,} bytes; the limit is {MAX_BYTES:,}")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=parse_float)
    except UnicodeDecodeError:
        raise DataError(source, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(source, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise DataError(source, str(exc)) from None
    except RecursionError:
        raise DataError(source, f"JSON nested too deeply; a results file nests at most {MAX_DEPTH} levels") from None


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of parsed JSON, without recursion (stops counting past ``limit``)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a results file may hold")


def validate(payload: Any, source: str) -> list[Submission]:
    """Check a parsed results file; return the runs to store or raise a one-line ``DataError``."""
    if _depth(payload) > MAX_DEPTH:
        raise DataError(source, f"JSON nested more than {MAX_DEPTH} levels deep; a results file is flat")
    if isinstance(payload, dict):
        if payload.get("format") != FORMAT:
            raise DataError(source, f"expected \"format\": \"{FORMAT}\"", field="format")
        runs = payload.get("runs")
    elif isinstance(payload, list):
        runs = payload
    else:
        raise DataError(source, f"expected an object with \"format\": \"{FORMAT}\" and \"runs\"")
    if not isinstance(runs, list) or not runs:
        raise DataError(source, "expected a non-empty list of runs", field="runs")
    if len(runs) > MAX_RUNS:
        raise DataError(source, f"{len(runs)} runs; at most {MAX_RUNS} per file", field="runs")
    check_numbers(payload, source)
    known = _known_task_metrics()
    subs = [_validate_run(run, source, i, known) for i, run in enumerate(runs)]
    seen: dict[str, int] = {}
    for i, sub in enumerate(subs):
        if sub.run.fingerprint in seen:
            raise DataError(source, f"same content as run {seen[sub.run.fingerprint]}", record=f"run {i}")
        seen[sub.run.fingerprint] = i
    return subs


def _validate_run(run: Any, source: str, i: int, known: dict[str, set[str]]) -> Submission:
    where = f"run {i}"
    if not isinstance(run, dict):
        raise DataError(source, "expected an object", record=where)
    model = run.get("model")
    if not isinstance(model, str) or not clean_text(model):
        raise DataError(source, "expected a non-empty string", record=where, field="model")
    fields: dict[str, Any] = {"model": clean_text(model)}
    for key in RUN_STRING_FIELDS:
        value = run.get(key)
        if value is not None and not isinstance(value, str):
            raise DataError(source, f"expected a string or null, got {type(value).__name__}", record=where, field=key)
        fields[key] = clean_text(value) or None if value is not None else None
    seed = run.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) > 2**63 - 1):
        raise DataError(source, "expected an integer or null", record=where, field="seed")
    config = check_config(_json_object(run.get("config", {}), source, where, "config"), fields["method"], source,
                          where)
    versions = run.get("versions", {}) or {}
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ) or len(versions) > 100:
        raise DataError(source, "expected an object of package name -> version strings", record=where,
                        field="versions")
    versions = {clean_text(k, 100): clean_text(v, 100) for k, v in versions.items()}
    card = {**_config_card(config), **_card(run, source, where)}
    config = {k: v for k, v in config.items() if k != "card"}
    if card:
        config["card"] = card
    if isinstance(run.get("run_id"), str):  # keep the submitter's own id for reference, as text
        config = {**config, "submitted_run_id": clean_text(run["run_id"], 100)}
    rows = run.get("results")
    if not isinstance(rows, list) or not rows:
        raise DataError(source, "expected a non-empty list of results", record=where, field="results")
    if len(rows) > MAX_RESULTS_PER_RUN:
        raise DataError(source, f"{len(rows)} results; at most {MAX_RESULTS_PER_RUN} per run", record=where,
                        field="results")
    results = [_validate_result(r, source, f"{where} result {j}", known) for j, r in enumerate(rows)]
    keys = [(r["task"], r["metric"]) for r in results]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup:
        raise DataError(source, f"task '{dup[0]}' metric '{dup[1]}' appears twice", record=where, field="results")
    predictions = _predictions(run.get("predictions"), {task for task, _ in keys}, source, where)
    record = RunRecord(
        **fields, seed=seed, config=config, versions=versions, status="pending", source="submission",
        predictions_dir=None, fingerprint=fingerprint(fields, results),
    )
    return Submission(record, [ResultRow(**r) for r in results], predictions)


def _predictions(value: Any, tasks: set[str], source: str, where: str) -> dict[str, list[str]]:
    """``{task: [item id, ...]}`` from a run's ``predictions``: per task, a list of item ids or of objects with
    an ``id`` (the harness's prediction records). Ids are kept as text, each at most once."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(source, "expected an object of task name -> list of predictions", record=where,
                        field="predictions")
    out: dict[str, list[str]] = {}
    for task, items in value.items():
        shown = clean_text(str(task), 60)
        if task not in tasks:
            raise DataError(source, f"no result of the run is for task '{shown}'", record=where,
                            field=f"predictions.{shown}")
        if not isinstance(items, list) or not items:
            raise DataError(source, "expected a non-empty list of predictions (item ids, or objects with 'id')",
                            record=where, field=f"predictions.{shown}")
        ids: list[str] = []
        seen: set[str] = set()
        for j, item in enumerate(items):
            ident = item.get("id") if isinstance(item, dict) else item
            if isinstance(ident, bool) or not isinstance(ident, (str, int)) or not str(ident).strip() \
                    or len(str(ident)) > MAX_ID:
                raise DataError(source, f"expected an item id (a string of 1 to {MAX_ID} characters or an "
                                        "integer, or an object with 'id')", record=where,
                                field=f"predictions.{shown}[{j}]")
            text = str(ident)
            if text in seen:
                raise DataError(source, f"item id '{clean_text(text, 60)}' appears twice", record=where,
                                field=f"predictions.{shown}[{j}]")
            seen.add(text)
            ids.append(text)
        out[task] = ids
    return out


CARD_TEXT_FIELDS = ("license", "precision")
CARD_FIELDS = ("model_url", "params", *CARD_TEXT_FIELDS)


def _config_card(config: dict[str, Any]) -> dict[str, Any]:
    """``config.card``'s known fields (already checked by ``check_config``), text cleaned; the run's own
    ``model_url``/``params``/``license``/``precision`` fields override them."""
    card = config.get("card") if isinstance(config.get("card"), dict) else {}
    out = {k: card[k] for k in CARD_FIELDS if card.get(k) is not None}
    for key in CARD_TEXT_FIELDS:
        if key in out:
            out[key] = clean_text(out[key], 60)
    return out


def _card(run: dict[str, Any], source: str, where: str) -> dict[str, Any]:
    """The model card fields the About tab shows: ``model_url`` (https only), ``params`` (a positive
    integer), ``license`` and ``precision`` (short text). All optional."""
    card: dict[str, Any] = {}
    url = run.get("model_url")
    if url is not None:
        if not isinstance(url, str) or not re.match(r"^https://[^\s<>\"']{1,300}$", url):
            raise DataError(source, "expected an https:// URL", record=where, field="model_url")
        card["model_url"] = url
    params = run.get("params")
    if params is not None:
        if not isinstance(params, int) or isinstance(params, bool) or not 0 < params < 10**13:
            raise DataError(source, "expected a positive integer (parameter count)", record=where, field="params")
        card["params"] = params
    for key in CARD_TEXT_FIELDS:
        value = run.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise DataError(source, "expected a string or null", record=where, field=key)
            card[key] = clean_text(value, 60)
    return card


def _json_object(value: Any, source: str, where: str, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(source, f"expected an object, got {type(value).__name__}", record=where, field=key)
    size = len(json.dumps(value, ensure_ascii=False))
    if size > MAX_CONFIG_BYTES:
        raise DataError(source, f"{size:,} bytes of JSON; the limit is {MAX_CONFIG_BYTES:,}", record=where, field=key)
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate_result(row: Any, source: str, where: str, known: dict[str, set[str]]) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DataError(source, "expected an object", record=where)
    task, metric = row.get("task"), row.get("metric")
    if not isinstance(task, str) or task not in known:
        shown = clean_text(str(task), 60)
        raise DataError(source, f"unknown task '{shown}' (known: {', '.join(sorted(known))})", record=where,
                        field="task")
    base, _, ablation = metric.partition("@") if isinstance(metric, str) else ("", "", "")
    if base not in known[task] or (ablation and not _ABLATION.match(ablation)):
        shown = clean_text(str(metric), 60)
        raise DataError(source, f"task '{task}' has no metric '{shown}' (metrics: {', '.join(sorted(known[task]))})",
                        record=where, field="metric")
    low_bound, high_bound = METRIC_RANGES.get(base, DEFAULT_RANGE)
    out: dict[str, Any] = {"task": task, "metric": metric}
    for key in ("value", "ci_low", "ci_high"):
        value = row.get(key)
        if value is None and key != "value":
            out[key] = None
            continue
        if not _number(value):
            problem = f"{written(value)} is not a finite number" if isinstance(value, float) else \
                f"expected a finite number, got {type(value).__name__}"
            raise DataError(source, problem, record=where, field=key)
        if not low_bound <= value <= high_bound:
            raise DataError(source, f"{value} is outside [{low_bound:g}, {high_bound:g}] for '{base}'",
                            record=where, field=key)
        out[key] = float(value)
    if (out["ci_low"] is None) != (out["ci_high"] is None):
        raise DataError(source, "give both ci_low and ci_high or neither", record=where, field="ci_low")
    if out["ci_low"] is not None and not out["ci_low"] <= out["value"] <= out["ci_high"]:
        raise DataError(source, f"interval [{out['ci_low']}, {out['ci_high']}] does not contain value {out['value']}",
                        record=where, field="ci_low")
    n = row.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_N):
        raise DataError(source, f"expected a positive integer up to {MAX_N:,}", record=where, field="n")
    out["n"] = n
    direction = registered_direction(metric)
    given = row.get("higher_is_better")
    if given is not None and not isinstance(given, bool):
        raise DataError(source, "expected true or false", record=where, field="higher_is_better")
    if direction is not None and given is not None and given != direction:
        raise DataError(source, f"'{base}' is {'higher' if direction else 'lower'}-is-better in the registry",
                        record=where, field="higher_is_better")
    out["higher_is_better"] = direction if direction is not None else (
        given if given is not None else base != "hallucination_rate")
    version = row.get("task_version")
    if version is not None and not isinstance(version, str):
        raise DataError(source, "expected a string or null", record=where, field="task_version")
    out["task_version"] = clean_text(version, 40) if version else None
    return out
