"""The leaderboard's data: runs and results from the store or a snapshot, shaped into tables.

Nothing here imports the harness at module level, so the module also runs inside an exported Space,
which reads a JSON snapshot instead of the SQLite store. Values are stored in natural units (0.734);
tables show them times the metric's ``display_scale`` (73.4), as papers print them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboard.cite import harness_url

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


PERCENT = "percent"  # a rate in [0, 1], shown x100: the only unit the Average column mixes
SCORE = "score"  # an unbounded score (CIDEr, 0..10): never averaged with rates


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool = True
    display_scale: float = 1.0
    unit: str = PERCENT


@dataclass
class Board:
    """Everything the app shows: runs, their result rows, and metadata about tasks, metrics and methods."""

    runs: list[dict[str, Any]]
    results: list[dict[str, Any]]
    task_families: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    citations: dict[str, str] = field(default_factory=dict)
    studies: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    harness_version: str = ""  # for the harness's BibTeX entry (``cite.harness_entry``)
    harness_url: str = ""
    exported_at: str = ""
    guide: str = field(default_factory=lambda: submission_guide(base_url=docs_url(harness_url())))  # Submit tab  # a snapshot's export time (a Space's last update)

    @classmethod
    def from_store(cls, store: Any, studies_dir: str | Path | None = None) -> Board:
        runs = [r for r in store.runs() if r.get("status") != "rejected"]
        results = store.results()
        board = cls(runs, results, *_harness_metadata(results), harness_version=installed_harness_version(),
                    harness_url=harness_url())
        board.studies = load_studies(studies_dir) if studies_dir else []
        add_study_metrics(board)
        return board

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
        return cls(runs, results, payload.get("tasks", {}), metrics, payload.get("methods", {}),
                   payload.get("studies", []), payload.get("cards", []), str(payload.get("harness_version") or ""),
                   str(payload.get("harness_url") or "") or harness_url(), str(payload.get("exported_at") or ""),
                   "")  # a Space takes no uploads: its Submit tab points at the docs

    def to_snapshot(self, status: str = "approved") -> dict[str, Any]:
        """A JSON-able snapshot of the runs with ``status`` (and their metadata), for an exported Space.

        Only public fields travel (``public_run``): no predictions folder, no local paths, no fingerprints.
        Each run carries its ``test_set`` (``partial_reason``, computed here with the harness's data records),
        so a Space, which has no harness, still marks partial runs.
        """
        keep = ("task", "task_version", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better")
        by_run: dict[str, list[dict[str, Any]]] = {}
        for row in self.results:
            by_run.setdefault(row["run_id"], []).append({k: row.get(k) for k in keep})
        runs = [{**public_run(run), "test_set": partial_reason(run), "results": by_run.get(run["run_id"], [])}
                for run in self.runs if run.get("status") == status]
        used = {r["metric"] for run in runs for r in run["results"]}
        used |= {r["metric"] for study in self.studies for r in study["records"]}
        return {
            "format": SNAPSHOT_FORMAT,
            "runs": runs,
            "tasks": self.task_families,
            "metrics": {m: vars(self.metric(m)) for m in sorted(used)},
            "methods": self.citations,
            "harness_version": self.harness_version,
            "harness_url": self.harness_url,
            "studies": [public_study(s) for s in self.studies],
            "cards": scrub_paths(self.cards),
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
            return MetricInfo(bool(metric.higher_is_better), float(metric.display_scale), metric_unit(base))
        except Exception:
            pass
    return MetricInfo(stored, 1.0, metric_unit(base))


def metric_unit(metric: str) -> str:
    """``percent`` for a rate in [0, 1] (the submission schema's range), ``score`` for anything else."""
    from leaderboard.schema import DEFAULT_RANGE, METRIC_RANGES

    return PERCENT if METRIC_RANGES.get(metric.split("@")[0], DEFAULT_RANGE) == (0.0, 1.0) else SCORE


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


def installed_harness_version() -> str:
    try:
        from harness import __version__
    except ImportError:  # a Space: the snapshot carries it
        return ""
    return str(__version__)


# ------------------------------------------------------------------------------------------ run identity

_FINGERPRINT = re.compile(r"@([0-9a-f]{16})")
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_SAFE_URL = re.compile(r"https://[A-Za-z0-9._~:/?#@!$&'*+,;=%-]{1,300}")
SIZE_BUCKETS = (("< 3B", 0.0, 3e9), ("3B-10B", 3e9, 1e10), ("10B-30B", 1e10, 3e10), (">= 30B", 3e10, math.inf))
UNKNOWN = "unknown"


def model_key(name: Any) -> str:
    """What identifies a model: the content fingerprint a harness model name ends with (``tiny@44dfce972b03b425``,
    from ``harness.models.fingerprint``), else the whole name. A trained model's name (``tiny@<fp>+dpo``)
    does not end with one, so it never stands for its base model."""
    text = str(name or "")
    match = _FINGERPRINT.search(text)
    return f"@{match.group(1)}" if match and match.end() == len(text) else text


def short_model(name: Any) -> str:
    """A model name without its fingerprint, for chart legends (``tiny@44dfce972b03b425+dpo`` -> ``tiny+dpo``)."""
    return _FINGERPRINT.sub("", str(name or ""))


def method_label(run: dict[str, Any]) -> str:
    """The method with its plain options, as ``harness study`` labels its entries: ``mmedpo[noise=release]``."""
    config = public_run(run)["config"]  # one shape for store and snapshot runs
    pipeline = config.get("pipeline") if isinstance(config.get("pipeline"), dict) else {}
    options = pipeline.get("options") if isinstance(pipeline.get("options"), dict) else {}
    name = str(run.get("method") or "")
    return name + (f"[{','.join(f'{k}={v}' for k, v in sorted(options.items()))}]" if options else "")


def train_seed(run: dict[str, Any]) -> int | None:
    """The training seed of a trained run (``harness run`` records it beside the evaluation's), else the run's seed."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    pipeline = config.get("pipeline") if isinstance(config.get("pipeline"), dict) else {}
    train = pipeline.get("train") if isinstance(pipeline.get("train"), dict) else {}
    for value in (config.get("train_seed"), train.get("seed"), run.get("seed")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def model_card(run: dict[str, Any]) -> dict[str, Any]:
    """The model columns: ``link`` (the card's ``model_url``, else the Hugging Face page of a model named by its
    Hub id), ``params`` (a positive number, else NaN), ``precision`` (the card's, else the training
    precision) and ``license``. Stored values are read defensively: a malformed one is left blank."""
    config = public_run(run)["config"]  # one shape for store and snapshot runs
    card = config.get("card") if isinstance(config.get("card"), dict) else {}
    url = card.get("model_url")
    model = str(run.get("model") or "")
    model = model.rsplit("@", 1)[0] if model_key(model).startswith("@") else model  # a Hub model's own run
    if not (isinstance(url, str) and _SAFE_URL.fullmatch(url)):
        url = f"https://huggingface.co/{model}" if _HUB_ID.fullmatch(model) and ".." not in model else ""
    params = card.get("params")
    ok = isinstance(params, (int, float)) and not isinstance(params, bool) and math.isfinite(params) and params > 0
    return {"link": url, "params": float(params) if ok else math.nan,
            "precision": _short_text(card.get("precision") or config.get("precision")),
            "license": _short_text(card.get("license"))}


def _short_text(value: Any) -> str:
    return " ".join(value.split())[:60] if isinstance(value, str) else ""


def size_bucket(params: float) -> str:
    if isinstance(params, float) and math.isnan(params):
        return UNKNOWN
    return next(name for name, low, high in SIZE_BUCKETS if low <= params < high)


@dataclass
class Filters:
    """What the user narrowed the table to; empty lists mean no filter."""

    search: str = ""
    base_models: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    model_types: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)  # SIZE_BUCKETS names or "unknown"
    precisions: list[str] = field(default_factory=list)  # "unknown" for runs that say none
    licenses: list[str] = field(default_factory=list)

    def keep(self, run: dict[str, Any]) -> bool:
        if self.base_models and (run.get("base_model") or "") not in self.base_models:
            return False
        if self.methods and (run.get("method") or "") not in self.methods:
            return False
        if self.model_types and (run.get("model_type") or "") not in self.model_types:
            return False
        if self.sizes or self.precisions or self.licenses:
            card = model_card(run)
            if self.sizes and size_bucket(card["params"]) not in self.sizes:
                return False
            if self.precisions and (card["precision"] or UNKNOWN) not in self.precisions:
                return False
            if self.licenses and (card["license"] or UNKNOWN) not in self.licenses:
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

    cards = [model_card(r) for r in runs]
    sizes = {size_bucket(c["params"]) for c in cards}
    tasks = sorted({r["task"] for r in board.results})
    return {"base_models": values("base_model"), "methods": values("method"), "model_types": values("model_type"),
            "tasks": tasks, "sizes": [name for name, *_ in SIZE_BUCKETS if name in sizes] + sorted(sizes & {UNKNOWN}),
            "precisions": sorted({c["precision"] or UNKNOWN for c in cards}),
            "licenses": sorted({c["license"] or UNKNOWN for c in cards})}


# ------------------------------------------------------------------------------------------ provenance


def base_run_id(board: Board, run: dict[str, Any]) -> str | None:
    """The run the Δ columns compare ``run`` with, or None (``base_run_check`` says why)."""
    return base_run_check(board, run)[0]


def base_run_check(board: Board, run: dict[str, Any]) -> tuple[str | None, str]:
    """The base run of ``run``'s Δ, and a sentence saying which run that is or why there is none.

    ``harness run`` records ``config.base_run_id``. That run counts only when it is approved and on the board
    (a pending, rejected or missing one does not) and when it evaluated the model ``run`` names as its base:
    the model fingerprints (``model_key``) must agree, so a submission cannot take any approved run as its
    baseline. Runs stored before the field existed fall back to what the pipeline itself reused: the local
    ``role: base`` evaluation of the same base model with the same evaluation signature (tasks, split, limit,
    seed), never a submission. A display name alone never makes a run anyone's baseline.
    """
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    approved = {r["run_id"]: r for r in board.approved_runs()}
    named = config.get("base_run_id")
    if named:
        named = str(named)
        base = approved.get(named)
        if base is None or named == run["run_id"]:
            return None, f"config.base_run_id names run {named}, which is not an approved run on this board: no Δ"
        if not run.get("base_model") or model_key(base.get("model")) != model_key(run.get("base_model")):
            return None, (f"config.base_run_id names run {named}, which evaluated {base.get('model')!r}, not this "
                          f"run's base model {run.get('base_model')!r}: no Δ")
        return named, f"Δ against run {named} ({base.get('model')}), named in config.base_run_id"
    if run.get("source", "local") != "local" or config.get("role") != "method" or not config.get("signature"):
        return None, "no base run recorded: no Δ"
    candidates = [
        r for r in approved.values()
        if r.get("source", "local") == "local" and isinstance(r.get("config"), dict)
        and r["config"].get("role") == "base" and r["config"].get("signature") == config["signature"]
        and r.get("model") == run.get("base_model") and str(r.get("created_at")) <= str(run.get("created_at"))
    ]
    if not candidates:
        return None, "no local base evaluation with this run's evaluation signature: no Δ"
    found = max(candidates, key=lambda r: str(r.get("created_at")))["run_id"]
    return found, f"Δ against run {found}, the local base evaluation with the same evaluation signature"


def evaluated_split(run: dict[str, Any]) -> str | None:
    """The split a run was evaluated on, where its config says (``harness run`` and ``harness eval`` do)."""
    config = public_run(run)["config"]
    signature = config.get("signature") if isinstance(config.get("signature"), dict) else {}
    pipeline = config.get("pipeline") if isinstance(config.get("pipeline"), dict) else {}
    raw = run.get("config") if isinstance(run.get("config"), dict) else {}
    split = signature.get("split") or pipeline.get("eval_split") or raw.get("split")
    return str(split) if split else None


def test_set_text(run: dict[str, Any]) -> str:
    """``full``, or why not: ``partial (limit 300)``, ``val split`` (a validation run is no test result), both."""
    split, partial = evaluated_split(run), partial_reason(run)
    reasons = [f"{split} split"] if split and split != "test" else []
    reasons += [f"partial ({partial})"] if partial else []
    return ", ".join(reasons) or "full"


def partial_reason(run: dict[str, Any]) -> str:
    """Why a run covers only part of its test sets ('' for a full run): ``harness.results.compare.partial_reason``,
    or for a snapshot's run (a Space has no harness) the ``test_set`` computed when it was exported."""
    if "test_set" in run:  # only snapshot runs have it: the store's rows have no such column
        return str(run["test_set"] or "")
    from harness.results.compare import partial_reason as reason

    return reason(run)


def _values_by_run(board: Board) -> dict[str, dict[str, dict[str, Any]]]:
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for row in board.results:
        cells.setdefault(row["run_id"], {})[f"{row['task']}/{row['metric']}"] = row
    return cells


# ------------------------------------------------------------------------------------------ tables

RANK = "Rank"
TEST_SET = "Test set"
SEED = "Seed"
AVERAGED = "Averaged"  # "k of n": how many of the averaged columns a row has
PARAMS = "Params (B)"
PRECISION = "Precision"
LICENSE = "Licence"
LINK = "Link"
CARD_COLUMNS = (PARAMS, PRECISION, LICENSE, LINK)


def wide_table(board: Board, tab: Tab, filters: Filters | None = None, columns: Sequence[str] | None = None, *,
               show_ci: bool = False, show_delta: bool = True, sort_by: str | None = None,
               descending: bool | None = None) -> pd.DataFrame:
    """One row per approved run: rank, identity and training seed, the chosen ``task/metric`` columns
    (display units), the average over the columns the row has and how many those are, the model card
    (parameters, precision, licence, link), n per task, and optionally each cell's 95% interval and its Δ
    against the run's base run (``base_run_check``).

    Runs on part of a test set, or on another split, are marked in ``Test set`` (``test_set_text``) and rank
    after every full run (``sort_table``).
    """
    filters = filters or Filters()
    columns = [c for c in (columns if columns is not None else board.default_columns(tab)) if c in board.columns(tab)]
    if filters.tasks:
        columns = [c for c in columns if c.split("/", 1)[0] in filters.tasks]
    cells = _values_by_run(board)
    tasks = list(dict.fromkeys(c.split("/", 1)[0] for c in columns))
    averaged = averaged_columns(board, columns)
    records = []
    for run in board.approved_runs():
        mine = cells.get(run["run_id"], {})
        if not filters.keep(run) or not any(c in mine for c in columns):
            continue
        seed, card = train_seed(run), model_card(run)
        record: dict[str, Any] = {
            RANK: math.nan, "Model": run.get("model") or "", "Method": method_label(run),
            SEED: math.nan if seed is None else seed, "Base model": run.get("base_model") or "",
            "Type": run.get("model_type") or "", TEST_SET: test_set_text(run),
            PARAMS: round(card["params"] / 1e9, 1), PRECISION: card["precision"], LICENSE: card["license"],
            LINK: card["link"],
        }
        for col in columns:
            record[col] = _scaled(board, mine.get(col), "value")
        record[AVERAGE], count = _average(averaged, record)
        record[AVERAGED] = f"{count} of {len(averaged)}" if averaged else ""
        for task in tasks:
            ns = [mine[c]["n"] for c in columns if c.startswith(task + "/") and c in mine and mine[c].get("n")]
            record[f"{task} n"] = max(ns) if ns else math.nan
        for col in columns if show_ci else ():
            record[f"{col} CI"] = _ci_text(board, mine.get(col))
        base_cells = cells.get(base_run_id(board, run) or "", {}) if show_delta else {}
        for col in columns if show_delta else ():
            base, value = base_cells.get(col), mine.get(col)
            scale = board.metric(col.split("/", 1)[1]).display_scale
            record[f"{col} Δ"] = (round((value["value"] - base["value"]) * scale, 2)
                                  if base is not None and value is not None else math.nan)
        record[RUN_ID] = run["run_id"]
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=table_columns(columns, show_ci, show_delta, tasks))
    return sort_table(board, frame, sort_by, descending)


def table_columns(columns: Sequence[str], show_ci: bool, show_delta: bool,
                  tasks: Sequence[str] = ()) -> list[str]:
    # the values come right after the name, so a long name or many identity columns never push them away
    return [RANK, "Model", "Method", SEED, *columns, AVERAGE, AVERAGED, TEST_SET, "Base model", "Type",
            *CARD_COLUMNS, *(f"{t} n" for t in tasks), *(f"{c} CI" for c in columns if show_ci),
            *(f"{c} Δ" for c in columns if show_delta), RUN_ID]


def sort_table(board: Board, frame: pd.DataFrame, sort_by: str | None, descending: bool | None) -> pd.DataFrame:
    """Sort by a column, best first by default (the metric's direction decides what best means), and rank
    every row that has a value there. Rows compare only with rows like them, so three tiers come in order:
    runs on the full test sets before runs on part of one; and, by the Average, rows averaging more
    columns before rows averaging fewer (a run on one task never outranks a run on all of them by
    skipping the hard one). Rows without a value come last, unranked."""
    if frame.empty:
        return frame.reset_index(drop=True)
    sort_by = sort_by if sort_by in frame.columns else AVERAGE
    if descending is None:
        metric = sort_by.split("/", 1)[1].split(" ")[0] if "/" in sort_by else None
        descending = board.metric(metric).higher_is_better if metric else sort_by == AVERAGE
    frame = frame.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")
    if sort_by == AVERAGE and AVERAGED in frame.columns:
        frame = frame.sort_values(AVERAGED, key=lambda s: -s.map(_count_of), kind="stable")
    if TEST_SET in frame.columns:
        frame = frame.sort_values(TEST_SET, key=lambda s: s != "full", kind="stable")
    frame = frame.sort_values(sort_by, key=lambda s: s.isna(), kind="stable")
    if RANK in frame.columns:
        valued = frame[sort_by].notna()
        frame[RANK] = math.nan
        frame.loc[valued, RANK] = range(1, int(valued.sum()) + 1)
    return frame.reset_index(drop=True)


def _count_of(text: Any) -> int:
    head = str(text).split(" of ", 1)[0]
    return int(head) if head.isdigit() else 0


def _scaled(board: Board, row: dict[str, Any] | None, key: str) -> float:
    if row is None or row.get(key) is None:
        return math.nan
    return round(row[key] * board.metric(row["metric"]).display_scale, 2)


def _ci_text(board: Board, row: dict[str, Any] | None) -> str:
    if row is None or row.get("ci_low") is None or row.get("ci_high") is None:
        return ""
    return f"[{_scaled(board, row, 'ci_low'):.2f}, {_scaled(board, row, 'ci_high'):.2f}]"


def averaged_columns(board: Board, columns: Sequence[str]) -> list[str]:
    """The columns the Average takes: higher-is-better rates (percent). CIDEr (a 0-10 score shown x100)
    and lower-is-better rates such as hallucination rate are left out: averaging them with accuracies
    would let one unbounded score dominate, or reward hallucinating."""
    return [c for c in columns if board.metric(c.split("/", 1)[1]).higher_is_better
            and board.metric(c.split("/", 1)[1]).unit == PERCENT]


def _average(averaged: Sequence[str], record: dict[str, Any]) -> tuple[float, int]:
    """Mean of the ``averaged`` columns the row has, and how many those are (blank, 0 when it has none)."""
    values = [record[c] for c in averaged if not (isinstance(record[c], float) and math.isnan(record[c]))]
    return (round(sum(values) / len(values), 2) if values else math.nan), len(values)


def delta_direction(board: Board, column: str) -> bool:
    """True when a positive Δ in ``column`` (``task/metric Δ`` or ``task/metric``) is an improvement."""
    metric = column.removesuffix(" Δ").split("/", 1)[-1]
    return board.metric(metric).higher_is_better


def pending_table(board: Board) -> pd.DataFrame:
    """Submissions waiting for ``harness leaderboard approve``, as the public sees them: when, what tasks,
    and the run id the submitter was given. Names stay hidden until a maintainer approves the run
    (``harness leaderboard pending`` lists them for maintainers)."""
    counts: dict[str, set[str]] = {}
    for row in board.results:
        counts.setdefault(row["run_id"], set()).add(row["task"])
    records = [
        {"Submitted": str(r.get("created_at") or ""), "Tasks": ", ".join(sorted(counts.get(r["run_id"], ()))),
         "Status": "pending review", RUN_ID: r["run_id"]}
        for r in board.pending_runs()
    ]
    return pd.DataFrame.from_records(records, columns=["Submitted", "Tasks", "Status", RUN_ID])


DOCS = Path(__file__).resolve().parent.parent / "docs" / "leaderboard.md"
GUIDE_SECTION = "## Submissions"


def submission_guide(docs: Path = DOCS, base_url: str = "") -> str:
    """The *Submissions* section of ``docs/leaderboard.md`` (the schema included), for the Submit tab: the
    docs stay the one description of the format. Pictures are left out; links to other docs pages point
    into ``base_url`` (the docs folder online) when known, else become plain text. '' without the docs."""
    try:
        text = docs.read_text(encoding="utf-8")
    except OSError:
        return ""
    start = text.find(GUIDE_SECTION)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(GUIDE_SECTION))
    section = text[start:end if end > 0 else len(text)]
    section = re.sub(r"^!\[[^\]]*\]\([^)]*\)\s*$", "", section, flags=re.MULTILINE)

    def link(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        if target.startswith(("https://", "#")):
            return match.group(0)
        return f"[{label}]({base_url.rstrip('/')}/{target})" if base_url else label

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, section).strip()


def docs_url(url: str) -> str:
    """The online docs folder of a GitHub or GitLab repository URL, else ''."""
    if re.match(r"https://(github\.com|gitlab\.com)/[\w.-]+/[\w.-]+/?$", url or ""):
        return url.rstrip("/") + "/blob/main/docs"
    return ""


def last_updated(board: Board) -> str:
    """When the board's data last changed, as far as it records: the newest approved run, or a Space's export
    time when later ("2026-12-07 16:19 UTC"); '' for an empty board."""
    from datetime import datetime, timezone

    stamps = [str(r.get("created_at") or "") for r in board.approved_runs()] + [board.exported_at]
    parsed = []
    for text in filter(None, stamps):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        parsed.append(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    return max(parsed).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if parsed else ""


VERIFICATION_TEXT = {"verified": "verified by the leaderboard", "unverified": "could not be checked",
                     "self-declared": "as the submitter declared it"}


def provenance_lines(board: Board, run: dict[str, Any]) -> list[str]:
    """What the Run page says about where a run's fields come from: its test set, its Δ baseline (and why a
    named one was refused), and, for a submission, ``config.verification`` (field -> ``verified``,
    ``unverified`` or ``self-declared``, set at submission); a run stored before that field existed, or a
    local run, says so instead."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    lines = [f"Test set: {test_set_text(run)}", base_run_check(board, run)[1]]
    verification = config.get("verification")
    if isinstance(verification, dict) and verification:
        lines += [f"{field}: {status} ({VERIFICATION_TEXT.get(str(status), 'unknown status')})"
                  for field, status in sorted(verification.items(), key=lambda kv: str(kv[0]))]
    elif run.get("source", "local") == "local":
        lines.append("Computed by the harness on the maintainers' machine (a local run): nothing self-declared.")
    else:
        lines.append(f"No verification record (a {run.get('source')} stored before submissions were checked): "
                     "every field is as declared.")
    return lines


def run_results(board: Board, run_id: str) -> pd.DataFrame:
    rows = [r for r in board.results if r["run_id"] == run_id]
    records = [
        {"Task": r["task"], "Metric": r["metric"], "Value": _scaled(board, r, "value"),
         "CI low": _scaled(board, r, "ci_low"), "CI high": _scaled(board, r, "ci_high"),
         "n": r.get("n") if r.get("n") is not None else math.nan}
        for r in rows
    ]
    return pd.DataFrame.from_records(records, columns=["Task", "Metric", "Value", "CI low", "CI high", "n"])


# ------------------------------------------------------------------------------------------ studies


def load_studies(folder: str | Path | None) -> list[dict[str, Any]]:
    """Studies written by ``harness study`` (``<folder>/<id>/study.json`` and its ``results.json``
    records); a study without records yet, or with unreadable files, is skipped."""
    out = []
    root = Path(folder) if folder else None
    if root is None or not root.is_dir():
        return out
    for state_path in sorted(root.glob("*/study.json")):
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            records = json.loads((state_path.parent / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or not isinstance(records, list) or not records:
            continue
        settings = state.get("settings") or {}
        out.append({
            "study_id": str(state.get("study_id") or state_path.parent.name),
            "created_at": str(state.get("created_at") or ""), "model": settings.get("model"),
            "tasks": list(settings.get("tasks") or []), "split": settings.get("eval_split"),
            "eval_limit": settings.get("eval_limit"), "train_limit": settings.get("train_limit"),
            "seeds": list(state.get("seeds") or []), "reference": state.get("reference"),
            "methods": list(state.get("methods") or []), "base_run_id": state.get("base_run_id"),
            "records": [r for r in records if isinstance(r, dict)],
        })
    return sorted(out, key=lambda s: s["created_at"], reverse=True)


def add_study_metrics(board: Board) -> None:
    """Registry metadata (direction, scale, unit) for metrics that only studies report."""
    for name in {r["metric"] for study in board.studies for r in study["records"]} - set(board.metrics):
        board.metrics[name] = _metric_info(name, [])


def public_study(study: dict[str, Any]) -> dict[str, Any]:
    return scrub_paths(study)


def study_label(study: dict[str, Any]) -> str:
    partial = f", partial test set (first {study['eval_limit']} items)" if study.get("eval_limit") else ""
    return (f"{study['study_id']} · {public_name(study.get('model'))} · {', '.join(study['methods'])} x "
            f"{len(study['seeds'])} seeds{partial}")


def significance(p: float | None, low: float | None = None, high: float | None = None) -> str:
    """``**`` p < 0.01, ``*`` p < 0.05, blank otherwise; given an interval, blank unless it excludes 0 too.

    A study's p-value and 95% interval come from one test (``harness.stats.seeds``), so they agree; a record
    where they do not (written by an older harness) is shown as not significant rather than half of each.
    """
    from harness.stats.intervals import significant

    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    if low is not None and high is not None and not significant(p, low, high):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def _study_scale(board: Board, record: dict[str, Any]) -> float:
    """Records of ``harness study`` are in display units (``units``); older ones in natural units."""
    return 1.0 if record.get("units") == "display" else board.metric(record["metric"]).display_scale


STUDY_COLUMNS = ["Task/metric", "Method", "Mean ± sd", "MDE", "Seeds", "Items", "Note"]


def study_table(board: Board, study: dict[str, Any], metric_filter: str | None = None) -> pd.DataFrame:
    """One row per (task/metric, method entry): mean ± sd over seeds, Δ vs base with its 95% interval, p and
    adjusted p, significance marks, MDE, seeds and items, and Δ vs the reference. Values in display units."""
    reference = study.get("reference") or "reference"
    rows = []
    for r in study["records"]:
        key = f"{r['task']}/{r['metric']}"
        if metric_filter and key != metric_filter:
            continue
        scale = _study_scale(board, r)
        better = bool(r.get("higher_is_better", board.metric(r["metric"]).higher_is_better))
        mean = r.get("mean")
        sd = r.get("sd")
        low, high = _scaled_or_none(r.get("ci_low"), scale), _scaled_or_none(r.get("ci_high"), scale)
        ref_low, ref_high = _scaled_or_none(r.get("ref_ci_low"), scale), _scaled_or_none(r.get("ref_ci_high"), scale)
        rows.append({
            "Task/metric": key + ("" if better else " (lower better)"),
            "Method": r["method"],
            "Mean ± sd": "-" if mean is None else f"{mean * scale:.1f}" + ("" if sd is None else f" ± {sd * scale:.1f}"),
            "Δ base": _delta_num(r.get("delta_vs_base"), scale),
            "95% CI": "" if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]",
            "p base": _p(r.get("p_vs_base")),
            "p adj.": _p(r.get("p_vs_base_adj")),
            "Sig. base": significance(r.get("p_vs_base"), low, high),
            f"Δ {reference}": _delta_num(r.get("delta_vs_ref"), scale),
            f"p {reference}": _p(r.get("p_vs_ref")),
            f"Sig. {reference}": significance(r.get("p_vs_ref"), ref_low, ref_high),
            "MDE": math.nan if r.get("mde") is None else round(r["mde"] * scale, 2),
            "Seeds": r.get("n_seeds"), "Items": r.get("n_items"),
            "Note": "item-level only" if r.get("item_level_only") else "",
        })
    return pd.DataFrame.from_records(rows, columns=STUDY_COLUMNS[:3] + ["Δ base", "95% CI", "p base", "p adj.",
                                                                        "Sig. base", f"Δ {reference}", f"p {reference}",
                                                                        f"Sig. {reference}", *STUDY_COLUMNS[3:]])


def _scaled_or_none(value: float | None, scale: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value * scale


def _delta_num(value: float | None, scale: float) -> float:
    return math.nan if value is None else round(value * scale, 2)


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def study_metrics(study: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(f"{r['task']}/{r['metric']}" for r in study["records"]))


def forest_rows(board: Board, study: dict[str, Any], metric_key: str) -> list[dict[str, Any]]:
    """Each non-base method's effect vs base on one metric with its 95% interval, in display units, and
    ``significant``/``mark`` from the same interval and p-value (``significance``)."""
    out = []
    for r in study["records"]:
        if f"{r['task']}/{r['metric']}" != metric_key or r.get("delta_vs_base") is None:
            continue
        scale = _study_scale(board, r)
        low, high = _scaled_or_none(r.get("ci_low"), scale), _scaled_or_none(r.get("ci_high"), scale)
        mark = significance(r.get("p_vs_base"), low, high) if low is not None and high is not None else ""
        out.append({"label": r["method"], "effect": r["delta_vs_base"] * scale, "low": low, "high": high,
                    "mark": mark, "significant": bool(mark)})
    return out


# ------------------------------------------------------------------------------------------ public export

_PUBLIC_RUN = ("run_id", "created_at", "model", "base_model", "method", "model_type", "seed", "status", "source",
               "harness_version", "git_commit", "versions")
_PUBLIC_CONFIG = ("role", "base_run_id", "signature", "train_seed", "pair_seed", "method", "card", "tasks",
                  "limit", "lm_eval_limit", "data",  # data: item counts and content hashes, which mark partial runs
                  "verification", "options")  # which submitted fields were checked; the method's options


def public_name(value: Any) -> Any:
    """A local path (``/home/me/models/llava+dpo``) becomes its last part (``llava+dpo``)."""
    if isinstance(value, str) and (value.startswith(("/", "~", "\\\\")) or (len(value) > 2 and value[1:3] in
                                                                             (":\\", ":/"))):
        return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return value


def scrub_paths(value: Any) -> Any:
    """Every string that is a local absolute path replaced by its last part, recursively."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str):
        head, sep, tail = value.partition("@")  # "<folder>@<fingerprint>" names keep their fingerprint
        return public_name(value) if not sep or not head.startswith("/") else f"{public_name(head)}@{tail}"
    return value


def public_run(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of a run a public Space may show: identity, provenance ids, versions; no folders, no
    fingerprints, no submitter identity, and only the config keys that say what was compared."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    public = {k: run.get(k) for k in _PUBLIC_RUN if k in run}
    kept = {k: config[k] for k in _PUBLIC_CONFIG if k in config}
    if isinstance(config.get("lm_eval"), dict) and config["lm_eval"].get("limit") is not None:
        kept["lm_eval_limit"] = config["lm_eval"]["limit"]
    if isinstance(config.get("pipeline"), dict):
        train = config["pipeline"].get("train") or {}
        kept["precision"] = train.get("precision")
        kept["eval_limit"] = config["pipeline"].get("eval_limit")
        kept["pipeline"] = _public_pipeline(config["pipeline"])
    public["config"] = kept
    return scrub_paths(public)


_PUBLIC_PIPELINE = ("method", "options", "tasks", "eval_split", "eval_limit", "train_limit", "text_pairs", "pair_seed",
                    "train")
_PRIVATE_OPTION = re.compile(r"url|key|token|secret|password|auth|env|path|dir|host", re.IGNORECASE)


def _public_pipeline(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The recipe of a ``harness run`` that the Methods tab groups by: what was trained and evaluated, with the
    method's plain options (no endpoint, key, path or nested judge settings)."""
    kept = {k: pipeline[k] for k in _PUBLIC_PIPELINE if k in pipeline}
    if isinstance(kept.get("options"), dict):
        kept["options"] = {k: v for k, v in kept["options"].items()
                           if isinstance(v, (str, int, float, bool)) and not _PRIVATE_OPTION.search(str(k))}
    if isinstance(kept.get("train"), dict):
        kept["train"] = {k: v for k, v in kept["train"].items() if not _PRIVATE_OPTION.search(str(k))
                         and k not in ("ref_cache", "run_name", "report_to")}
    return kept


def benchmark_cards(results: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """One card per registered task, built from the task and metric registries: what the benchmark is,
    its splits and test-set size, its metrics with their scoring rule and direction, and the code that
    scores it. The test ``n`` is the official split's size from the task registry (``Task.expected_size``),
    else the data's when present, else the largest n stored for the task (which may count one answer type
    only: VQA-RAD's closed questions are 272 of its 451)."""
    from harness.metrics import METRICS
    from harness.tasks import TASKS, get_task

    stored_n: dict[str, int] = {}
    for row in results:
        if row.get("n"):
            stored_n[row["task"]] = max(stored_n.get(row["task"], 0), int(row["n"]))
    cards = []
    for name in TASKS.names():
        try:
            task = get_task(name)
            sizes = task.sizes()
        except Exception:  # a broken plugin or missing data: the card says what is known
            task, sizes = None, None
        if task is None:
            continue
        metrics = []
        for metric in task.metrics:
            try:
                entry = METRICS.get(metric)
            except Exception:
                continue
            metrics.append({"name": metric, "description": entry.description,
                            "higher_is_better": bool(entry.higher_is_better), "unit": metric_unit(metric),
                            "code": getattr(entry.compute, "__module__", "")})
        official = task.expected_size("test")
        test_n, source = next(((n, where) for n, where in ((official, "the official split"),
                                                           ((sizes or {}).get("test"), "the data"),
                                                           (stored_n.get(name), "stored runs")) if n),
                              (None, ""))
        cards.append({"task": name, "family": task.family, "version": str(task.version),
                      "description": task.description, "citation": task.citation, "splits": list(task.splits),
                      "test_n": test_n, "n_source": source,
                      "loader": type(task).__module__, "metrics": metrics})
    return cards
