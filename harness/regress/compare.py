"""Paired regression comparison of a candidate against a baseline, per task and gated metric.

Both sides are matched on ``(task, id)``. Before anything is computed the two runs must be comparable
(:func:`check_comparable`): the candidate answered every baseline item (else ``allow_partial``), on the same
references and questions, with the same decoding, token budgets, split, task versions and harness version
where both runs recorded them (else ``allow_diff``).

The gated metrics (``DEFAULT_GATE``, or ``metrics``) are few on purpose: Holm's correction is taken over
them only, so a real drop in a headline metric is not diluted by twenty n-gram variants. For each one the
metric is expressed as per-item statistics (:mod:`harness.stats.items`) and one paired bootstrap
(:mod:`harness.stats.paired`) gives the delta (on the full set), its percentile interval and its p-value, on
the metric's own scale, so the delta always comes with the interval and test of the same quantity.

The verdict is a non-inferiority test against the tolerance ``max_drop`` (display points, as ``harness
eval`` shows them), read off the 95% interval of the delta (``VERDICTS`` below): a metric passes when the
interval's worst bound lies within the tolerance, and fails when it lies beyond it, whether the whole
interval does (*drop exceeds*) or only part of it (*drop may exceed*). The gate passes only when every gated
metric passes, an intersection-union test (Berger, 1982, Technometrics 24:295), whose level is the
interval's one-sided 2.5% without any multiplicity adjustment; Holm's adjustment applies to the p-values
of "any change" that are printed beside it and to the *improved* label.

Probe sets are gated on ``pope_accuracy`` and ``pope_yes_bias`` (the yes-ratio's distance from the share of
present findings), a pair that answering "yes" to everything cannot pass; F1 alone rewards it.

Silence cannot pass: ``hallucination_rate`` (pooled over claimed findings) is always gated with a coverage
metric of the same task (``finding_recall`` or ``chexpert_recall_micro``), so a model that stops claiming
findings fails on coverage, and its lower hallucination rate is *not credited* while coverage fell.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import HarnessError
from harness.metrics import items as item_stats
from harness.regress.sources import Predictions, Source, open_source
from harness.stats.exact import mcnemar_exact
from harness.stats.multiplicity import holm
from harness.stats.paired import paired_bootstrap
from harness.stats.power import planning_mde

log = logging.getLogger(__name__)

# Verdicts of a gated metric, from its 95% interval and the tolerance m = max_drop (docs/regression.md):
REGRESSED = "regressed"  # the whole interval lies beyond a drop of m: "drop exceeds m: REGRESSION"
MAY_EXCEED = "drop may exceed"  # only its worst bound does: non-inferiority not shown, a REGRESSION too
NON_INFERIOR = "non-inferior"  # its worst bound lies within m: "no drop beyond m (non-inferior)"
IMPROVED = "improved"  # non-inferior and better, with Holm-adjusted p < alpha
INCONCLUSIVE = "inconclusive"  # no interval could be computed: nothing shows non-inferiority, so it fails
NOT_CREDITED, REPORTED = "not credited: coverage fell", "reported, not gated"
FAILING = (REGRESSED, MAY_EXCEED, INCONCLUSIVE)
CORRECTIONS = ("holm", "none")
# The keys ``allow_diff`` may name; each is compared only when both runs recorded it.
COMPARABILITY_KEYS = ("decoding", "token_budgets", "prompts", "split", "task_versions", "harness_version", "data")
# The headline metrics gated by default, per kind of task (docs/regression.md gives the reasons).
DEFAULT_GATE = {
    "vqa": ("closed_accuracy", "open_recall"),
    "probe": ("pope_accuracy", "pope_yes_bias"),
    "report_findings": ("finding_f1", "finding_recall", "hallucination_rate"),
    "report": ("chexpert_f1_micro", "chexpert_recall_micro", "hallucination_rate"),
}
# Shown next to the gate, never tested: the yes-ratio has no good direction, F1 rewards saying "yes".
INFORMATIONAL = {"probe": ("pope_f1", "pope_yes_ratio")}
UNGATED = ("pope_yes_ratio",)  # never gated, even when asked for
YES_BIAS = "pope_yes_bias"  # what any other POPE score is gated together with
COVERAGE = ("finding_recall", "chexpert_recall_micro")  # what a hallucination rate is gated together with
# Lower is better and a report that claims nothing scores best: never gated without a coverage metric.
SILENCE_REWARDED = ("hallucination_rate", "false_finding_rate")
POWER = 0.8  # of the minimum detectable drop
EPS = 1e-9  # display points: a bound equal to the tolerance is within it


@dataclass
class RegressConfig:
    """Options of a regression comparison (the CLI and the pytest plugin read these defaults)."""

    metrics: Sequence[str] | None = field(default=None, metadata={
        "help": "metrics to gate, a,b (default: the headline set of each task, see docs/regression.md)"})
    tasks: Sequence[str] | None = field(default=None, metadata={"help": "tasks to compare (default: all the baseline's)"})
    alpha: float = field(default=0.05, metadata={"help": "significance level of the family of gated tests"})
    max_drop: float = field(default=0.0, metadata={
        "help": "tolerated drop in display points, as harness eval shows them (2 = 2 points of accuracy): a metric "
                "fails when its 95% interval reaches beyond it (non-inferiority)"})
    correction: str = field(default="holm", metadata={
        "help": "multiple-testing correction of the printed p-values of any change and of 'improved': holm or none"})
    n_boot: int = field(default=10000, metadata={"help": "paired bootstrap resamples"})
    seed: int = field(default=0, metadata={"help": "seed of the paired bootstrap"})
    allow_partial: bool = field(default=False, metadata={
        "help": "compare even when the candidate misses baseline items (only the shared items are tested)"})
    allow_diff: Sequence[str] = field(default=(), metadata={
        "help": "settings allowed to differ between the runs: " + ", ".join(COMPARABILITY_KEYS)})

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise HarnessError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.max_drop < 0:
            raise HarnessError(f"max drop must be >= 0, got {self.max_drop}")
        if self.correction not in CORRECTIONS:
            raise HarnessError(f"correction must be one of {', '.join(CORRECTIONS)}, got '{self.correction}'")
        if self.n_boot < 100:
            raise HarnessError(f"n_boot must be at least 100, got {self.n_boot}")
        unknown = [k for k in self.allow_diff if k not in COMPARABILITY_KEYS]
        if unknown:
            raise HarnessError(f"unknown --allow-diff key '{unknown[0]}' (keys: {', '.join(COMPARABILITY_KEYS)})")


@dataclass
class MetricComparison:
    task: str
    metric: str
    n: int
    higher_is_better: bool
    baseline: float  # natural units, like the metric functions
    candidate: float
    delta: float  # candidate - baseline on the full shared item set
    ci_low: float  # percentile interval of the paired bootstrap delta
    ci_high: float
    p_value: float  # paired bootstrap, two-sided, of any change
    p_adjusted: float
    kind: str = "mean"  # mean, corpus or macro
    scale: float = 100.0  # display units = natural units x scale (as harness eval shows the metric)
    mde: float = float("nan")  # minimum detectable drop, natural units
    se_baseline: float = float("nan")  # bootstrap standard error of the baseline's value (for the mde)
    units: int | None = None  # resampled units when items are resampled by image (probe sets)
    gated: bool = True
    verdict: str = NON_INFERIOR
    tolerance: float = 0.0  # max_drop, display points
    mcnemar: dict[str, Any] | None = None  # for 0/1 per-item metrics: discordant pairs and exact p (a cross-check)
    support: tuple[float, float] | None = None  # what a pooled rate rests on (claimed findings), both sides
    note: str = ""

    @property
    def worse_by(self) -> float:
        """How much worse the candidate is (positive: worse), whatever the metric's direction."""
        return -self.delta if self.higher_is_better else self.delta

    @property
    def drop_bounds(self) -> tuple[float, float]:
        """(largest, smallest) drop the 95% interval allows, display points (positive: worse)."""
        worst, best = (-self.ci_low, -self.ci_high) if self.higher_is_better else (self.ci_high, self.ci_low)
        return worst * self.scale, best * self.scale

    @property
    def failed(self) -> bool:
        return self.gated and self.verdict in FAILING

    def verdict_text(self) -> str:
        m = f"{self.tolerance:g}"
        return {
            REGRESSED: f"drop exceeds {m}: REGRESSION",
            MAY_EXCEED: f"drop may exceed {m}: REGRESSION",
            NON_INFERIOR: f"no drop beyond {m} (non-inferior)",
            IMPROVED: f"improved (no drop beyond {m})",
            INCONCLUSIVE: "inconclusive: no interval, counted as a REGRESSION",
        }.get(self.verdict, self.verdict)

    def display(self) -> dict[str, Any]:
        """The row in display units (numbers, the interval as two numbers)."""
        s = self.scale
        row = {"task": self.task, "metric": self.metric, "n": self.n, "baseline": _r(self.baseline * s),
               "candidate": _r(self.candidate * s), "delta": _r(self.delta * s),
               "ci": [_r(self.ci_low * s), _r(self.ci_high * s)], "p": _sig(self.p_value),
               "p_adj": _sig(self.p_adjusted) if self.gated else None, "mde": _r(self.mde * s) if self.gated else None,
               "tolerance": self.tolerance if self.gated else None, "verdict": self.verdict,
               "verdict_text": self.verdict_text()}
        if self.support is not None:
            row["claimed"] = [int(self.support[0]), int(self.support[1])]
        if self.units is not None:
            row["images"] = self.units
        if self.note:
            row["note"] = self.note
        return row

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worse_by": self.worse_by}


def _r(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 2)


def _sig(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(f"{value:.3g}")


@dataclass
class Comparison:
    baseline: str
    candidate: str
    config: RegressConfig
    rows: list[MetricComparison]
    only_baseline: int = 0
    only_candidate: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def gated(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.gated]

    @property
    def regressed(self) -> list[MetricComparison]:
        """The gated metrics that fail: drop exceeds or may exceed the tolerance, or no interval."""
        return [r for r in self.rows if r.failed]

    @property
    def ok(self) -> bool:
        return not self.regressed

    def verdict_line(self) -> str:
        if self.regressed:
            names = ", ".join(f"{r.task}/{r.metric}" for r in self.regressed)
            return f"REGRESSION in {len(self.regressed)} of {len(self.gated)} metrics: {names}"
        return (f"PASS ({len(self.gated)} metrics gated, none regressed: no drop beyond "
                f"{self.config.max_drop:g} (non-inferior))")

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {"verdict": "REGRESSION" if self.regressed else "PASS", "regressed": len(self.regressed),
                "gated": len(self.gated), "baseline": self.baseline, "candidate": self.candidate,
                "units": "display (natural value x scale, as harness eval prints)",
                "verdict_line": self.verdict_line(),
                "config": {"alpha": cfg.alpha, "max_drop": cfg.max_drop, "correction": cfg.correction,
                           "n_boot": cfg.n_boot, "seed": cfg.seed, "allow_partial": cfg.allow_partial,
                           "allow_diff": list(cfg.allow_diff)},
                "only_baseline": self.only_baseline, "only_candidate": self.only_candidate,
                "warnings": list(self.warnings), "rows": [r.display() for r in self.rows]}


def compare_sources(baseline: str | Path, candidate: str | Path, config: RegressConfig | None = None, *,
                    store: Any = None) -> Comparison:
    """Load both sides (pin names, run ids, run directories or predictions files) and compare them."""
    config = config or RegressConfig()
    base, cand = open_source(baseline, store=store), open_source(candidate, store=store)
    warnings = check_comparable(base, cand, config)
    return compare(base.records, cand.records, config, baseline_label=base.label, candidate_label=cand.label,
                   warnings=warnings)


def check_comparable(base: Source, cand: Source, config: RegressConfig) -> list[str]:
    """Raise (one line) when the runs differ in a setting not allowed to differ; return warnings."""
    warnings = []
    for key in COMPARABILITY_KEYS:
        if key == "prompts":
            continue  # checked item by item in compare()
        if key == "data":
            warnings += _check_data(base.settings.get("data"), cand.settings.get("data"), config)
            continue
        if key not in base.settings or key not in cand.settings:
            if key in ("decoding", "token_budgets"):
                warnings.append(f"{key} not recorded for {'the baseline' if key not in base.settings else 'the candidate'}"
                                ": not checked")
            continue
        b, c = base.settings[key], cand.settings[key]
        if key == "task_versions":  # only the tasks both ran
            b = {t: v for t, v in b.items() if t in c}
            c = {t: v for t, v in c.items() if t in b}
        if b != c:
            if key in config.allow_diff:
                warnings.append(f"{key} differ (allowed): baseline {b}, candidate {c}")
                continue
            raise HarnessError(f"the runs are not comparable: {key} differ (baseline {b}, candidate {c}); "
                               f"pass --allow-diff {key} if that is intended")
    return warnings


def _check_data(base: dict[str, Any] | None, cand: dict[str, Any] | None, config: RegressConfig) -> list[str]:
    """The runs' data records (``harness.tasks.identity``), task by task: a partial run against a full one is
    refused unless ``allow_partial``; the same official split read as other content unless ``allow_diff data``."""
    if not base and not cand:
        return []
    if not base or not cand:
        return [f"data not recorded for {'the baseline' if not base else 'the candidate'}: not checked"]
    warnings = []
    for task in sorted(set(base) & set(cand)):
        b, c = base[task] or {}, cand[task] or {}
        if bool(b.get("partial")) != bool(c.get("partial")):
            which, record = ("candidate", c) if c.get("partial") else ("baseline", b)
            msg = f"the {which} evaluated part of {task} ({record.get('partial')}), the other run the full split"
            if not config.allow_partial:
                raise HarnessError(f"the runs are not comparable: {msg}; evaluate both on the same items, or pass "
                                   "--allow-partial to compare the shared items")
            warnings.append(msg + "; comparing the shared items (--allow-partial)")
        elif not b.get("partial") and b.get("content_sha256") and c.get("content_sha256") \
                and b["content_sha256"] != c["content_sha256"]:
            msg = (f"{task}: the runs read other data for the same split ({b.get('n')} vs {c.get('n')} items, "
                   f"content {b['content_sha256'][:12]} vs {c['content_sha256'][:12]})")
            if "data" not in config.allow_diff:
                raise HarnessError(f"the runs are not comparable: {msg}; pass --allow-diff data if that is intended")
            warnings.append(msg + " (allowed)")
    return warnings


def compare(baseline: Predictions, candidate: Predictions, config: RegressConfig | None = None, *,
            baseline_label: str = "baseline", candidate_label: str = "candidate",
            warnings: list[str] | None = None) -> Comparison:
    config = config or RegressConfig()
    warnings = list(warnings or [])
    wanted = set(config.tasks) if config.tasks else None
    base_keys = [k for k in baseline if wanted is None or k[0] in wanted]
    if wanted:
        missing_tasks = sorted(wanted - {k[0] for k in baseline})
        if missing_tasks:
            raise HarnessError(f"the baseline '{baseline_label}' has no task {', '.join(missing_tasks)}")
    shared = [k for k in base_keys if k in candidate]
    only_base = len(base_keys) - len(shared)
    only_cand = sum(1 for k in candidate if k not in baseline and (wanted is None or k[0] in wanted))
    if only_base:
        per_task: dict[str, int] = {}
        for k in base_keys:
            if k not in candidate:
                per_task[k[0]] = per_task.get(k[0], 0) + 1
        detail = ", ".join(f"{t} {n}" for t, n in sorted(per_task.items()))
        msg = f"the candidate misses {only_base} of {len(base_keys)} baseline items ({detail})"
        if not config.allow_partial:
            raise HarnessError(f"{msg}: evaluate the same tasks and items (no --limit), or pass --allow-partial")
        warnings.append(msg + "; comparing the shared items (--allow-partial)")
    if only_cand:
        warnings.append(f"{only_cand} candidate item(s) are not in the baseline: left out")
    if not shared:
        raise HarnessError(f"'{baseline_label}' and '{candidate_label}' share no (task, id) items to compare")
    _check_items(baseline, candidate, shared, config, warnings)
    rows = []
    for task in sorted({key[0] for key in shared}):
        keys = [k for k in shared if k[0] == task]
        rows += _compare_task(task, [baseline[k] for k in keys], [candidate[k] for k in keys], config, warnings)
    if not any(r.gated for r in rows):
        raise HarnessError("no metric could be gated: name metrics with --metrics that fit the items' answer types")
    _apply_verdicts(rows, config)
    for msg in warnings:  # returned with the comparison; the CLI prints them once, as "warning: ..."
        log.debug(msg)
    return Comparison(baseline_label, candidate_label, config, rows, only_base, only_cand, warnings)


def _check_items(baseline: Predictions, candidate: Predictions, shared, config: RegressConfig,
                 warnings: list[str]) -> None:
    changed = [k for k in shared if str(baseline[k]["reference"]) != str(candidate[k]["reference"])]
    if changed:
        raise HarnessError(f"{len(changed)} shared item(s) have different references in the two runs (first "
                           f"{changed[0][0]}/{changed[0][1]}): they were not evaluated on the same data")
    asked = [k for k in shared if "question" in baseline[k] and "question" in candidate[k]
             and str(baseline[k]["question"]) != str(candidate[k]["question"])]
    if asked:
        msg = (f"prompts differ: {len(asked)} shared item(s) were asked differently (first {asked[0][0]}/{asked[0][1]})")
        if "prompts" not in config.allow_diff:
            raise HarnessError(f"the runs are not comparable: {msg}; pass --allow-diff prompts if that is intended")
        warnings.append(msg + " (allowed)")


def task_kind(task: str, records: Sequence[dict]) -> str:
    """``vqa``, ``probe``, ``report_findings`` or ``report`` (decides the default gate)."""
    from harness.tasks import TASKS

    declared: tuple[str, ...] = ()
    base = task.split("@")[0]
    if base in TASKS:
        declared = tuple(TASKS.get(base).metrics)
    if "pope_f1" in declared:
        return "probe"
    types = {str(r["answer_type"]) for r in records}
    if "report" in types:
        return "report_findings" if "finding_f1" in declared else "report"
    return "vqa"


def metrics_for(task: str, records: Sequence[dict], requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(gated metrics, informational metrics) for one task; a hallucination rate brings its coverage metric and a
    POPE score the yes-bias."""
    kind = task_kind(task, records)
    if not requested:
        return list(DEFAULT_GATE[kind]), list(INFORMATIONAL.get(kind, ()))
    gated = [m for m in requested if m not in UNGATED]
    info = [m for m in requested if m in UNGATED]
    if any(m in gated for m in SILENCE_REWARDED) and not any(m in gated for m in COVERAGE):
        gated.append("finding_recall" if kind == "report_findings" else "chexpert_recall_micro")
    if any(m.startswith("pope_") for m in gated) and YES_BIAS not in gated:
        gated.append(YES_BIAS)
    return gated, info


def _compare_task(task: str, base: list[dict], cand: list[dict], config: RegressConfig,
                  warnings: list[str]) -> list[MetricComparison]:
    from harness.metrics import get_metric

    gated, info = metrics_for(task, base, config.metrics)
    if config.metrics:
        for added in (m for m in gated if m not in config.metrics):
            reason = "a hallucination metric" if added in COVERAGE else "a POPE score"
            warnings.append(f"{task}: {reason} is gated together with {added}")
    rows = []
    caches: tuple[dict, dict] = ({}, {})  # per side: labelled reports shared by the metrics of one subset
    texts: dict[str | None, tuple[list[int], list[str], list[str], list[str]]] = {}
    for name in gated + info:
        metric = get_metric(name)
        if metric.subset not in texts:  # one list object per subset, so the caches can key on it
            idx = [i for i, r in enumerate(base) if metric.subset is None or r["answer_type"] == metric.subset]
            texts[metric.subset] = (idx, [str(base[i]["reference"]) for i in idx],
                                    [str(base[i]["prediction"]) for i in idx], [str(cand[i]["prediction"]) for i in idx])
        idx, refs, base_preds, cand_preds = texts[metric.subset]
        if not idx:
            log.info("%s/%s: no '%s' items, skipped", task, name, metric.subset)
            continue
        sides = []
        for preds, cache, label in ((base_preds, caches[0], "baseline"), (cand_preds, caches[1], "candidate")):
            side = item_stats.item_statistics(name, preds, refs, cache=cache)
            if side.kind != "mean":
                item_stats.check(name, side, metric(preds, refs, seed=0, n_boot=0).value, label)
            sides.append(side)
        clusters = _clusters([base[i] for i in idx])
        result = paired_bootstrap(sides[0], sides[1], seed=config.seed, n_boot=config.n_boot, clusters=clusters)
        rows.append(MetricComparison(
            task=task, metric=name, n=len(idx), higher_is_better=metric.higher_is_better,
            baseline=result.baseline, candidate=result.candidate, delta=result.delta, ci_low=result.ci_low,
            ci_high=result.ci_high, p_value=result.p_value, p_adjusted=result.p_value, kind=sides[0].kind,
            scale=metric.display_scale, gated=name in gated, verdict=NON_INFERIOR if name in gated else REPORTED,
            mcnemar=_cross_check(sides[0], sides[1]),
            support=(sides[0].support(sides[0].stats.sum(0)), sides[1].support(sides[1].stats.sum(0)))
            if sides[0].support else None,
        ))
        rows[-1].se_baseline = result.se_baseline
        rows[-1].units = len(set(clusters)) if clusters else None
    return rows


def _clusters(records: Sequence[dict]) -> list[str] | None:
    """The resampling unit: the source image of probe items (``metadata.source_id``), else each item."""
    keys = [(r.get("metadata") or {}).get("source_id") for r in records]
    if not any(keys):
        return None
    return [str(k) if k else f"item:{r['id']}" for k, r in zip(keys, records)]


def _cross_check(base: item_stats.ItemStatistics, cand: item_stats.ItemStatistics) -> dict[str, Any] | None:
    if base.kind != "mean":
        return None
    b, c = base.stats[:, 0], cand.stats[:, 0]
    if not (np.isin(b, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all()):
        return None
    valid = (base.stats[:, 1] > 0) & (cand.stats[:, 1] > 0)
    result = mcnemar_exact(b[valid], c[valid])
    return {"baseline_only": result.baseline_only, "candidate_only": result.candidate_only, "p": result.p_value}


def _verdict(row: MetricComparison, config: RegressConfig) -> str:
    if not (np.isfinite(row.ci_low) and np.isfinite(row.ci_high)):
        return INCONCLUSIVE
    worst, best = row.drop_bounds
    if best > config.max_drop + EPS:
        return REGRESSED
    if worst > config.max_drop + EPS:
        return MAY_EXCEED
    if row.p_adjusted < config.alpha and row.worse_by < 0:
        return IMPROVED
    return NON_INFERIOR


def _apply_verdicts(rows: list[MetricComparison], config: RegressConfig) -> None:
    gated = [r for r in rows if r.gated]
    p_values = [r.p_value for r in gated]
    adjusted = holm(p_values) if config.correction == "holm" else p_values
    for row, p in zip(gated, adjusted):
        row.p_adjusted = p
        row.tolerance = config.max_drop
        row.mde = planning_mde(row.se_baseline, alpha=config.alpha, power=POWER)
        row.verdict = _verdict(row, config)
    for row in gated:
        if row.metric not in SILENCE_REWARDED:
            continue
        coverage = [r for r in gated if r.task == row.task and r.metric in COVERAGE]
        if row.support is not None and row.support[1] == 0:
            row.note = "the candidate claims no finding: its rate is empty, not zero hallucinations"
        if row.worse_by < 0 and any(c.worse_by > 0 for c in coverage):
            row.verdict = NOT_CREDITED if row.verdict not in FAILING else row.verdict
            fell = next(c.metric for c in coverage if c.worse_by > 0)
            row.note = (row.note + "; " if row.note else "") + f"{fell} fell"
