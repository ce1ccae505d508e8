"""Paired regression comparison of a candidate against a baseline, per task and metric.

Both sides are matched on ``(task, id)``; only items both answered are compared (a mismatch is logged
and reported). For each metric the task declares (or those asked for), the metric is recomputed on the
shared items of its answer type, on both sides, keeping per-sample scores in the same item order, and:

- ``p_exact``: exact McNemar test when both sides' per-sample scores are 0/1 (accuracies);
- ``p_bootstrap``, ``ci_low``/``ci_high``: paired bootstrap of the per-sample score difference.

The verdict's p-value is the exact test for 0/1 metrics, the bootstrap otherwise, adjusted across all
compared metrics with Holm's method by default (``correction="none"`` tests each at alpha). A metric
*regressed* when its adjusted p < alpha AND it got worse by more than ``max_drop`` (natural units, in the
metric's bad direction); *improved* when p < alpha and it got better; else *no significant change*.

Corpus-level metrics (BLEU, CIDEr, micro-F1) have per-sample scores whose mean is not the corpus value;
their test is on the per-sample scores while ``delta`` and ``max_drop`` use the corpus values.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.regress import stats
from harness.regress.sources import Predictions, load_source

log = logging.getLogger(__name__)

REGRESSED, IMPROVED, NO_CHANGE = "regressed", "improved", "no significant change"
CORRECTIONS = ("holm", "none")


@dataclass
class RegressConfig:
    """Options of a regression comparison (the CLI and the pytest plugin read these defaults)."""

    metrics: Sequence[str] | None = field(default=None, metadata={"help": "metrics to compare (default: each task's)"})
    tasks: Sequence[str] | None = field(default=None, metadata={"help": "tasks to compare (default: all shared)"})
    alpha: float = field(default=0.05, metadata={"help": "significance level of the family of tests"})
    max_drop: float = field(default=0.0, metadata={"help": "tolerated drop in natural units (0.02 = 2 points)"})
    correction: str = field(default="holm", metadata={"help": "multiple-testing correction: holm or none"})
    n_boot: int = field(default=10000, metadata={"help": "paired bootstrap resamples"})
    seed: int = field(default=0, metadata={"help": "seed of the paired bootstrap"})

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise HarnessError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.max_drop < 0:
            raise HarnessError(f"max drop must be >= 0, got {self.max_drop}")
        if self.correction not in CORRECTIONS:
            raise HarnessError(f"correction must be one of {', '.join(CORRECTIONS)}, got '{self.correction}'")
        if self.n_boot < 100:
            raise HarnessError(f"n_boot must be at least 100, got {self.n_boot}")


@dataclass
class MetricComparison:
    task: str
    metric: str
    n: int
    higher_is_better: bool
    baseline: float
    candidate: float
    delta: float  # candidate - baseline, in the metric's own direction
    ci_low: float  # paired bootstrap 95% interval of the per-sample difference
    ci_high: float
    p_bootstrap: float
    p_exact: float | None
    p_value: float  # the test used for the verdict, before correction
    p_adjusted: float
    verdict: str = NO_CHANGE
    discordant: tuple[int, int] | None = None  # (baseline only right, candidate only right)

    @property
    def worse_by(self) -> float:
        """How much worse the candidate is (positive: worse), whatever the metric's direction."""
        return -self.delta if self.higher_is_better else self.delta

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worse_by": self.worse_by}


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
    def regressed(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.verdict == REGRESSED]

    @property
    def ok(self) -> bool:
        return not self.regressed


def compare_sources(baseline: str | Path, candidate: str | Path, config: RegressConfig | None = None, *,
                    store: Any = None) -> Comparison:
    """Load both sides (run ids, run directories or predictions files) and compare them."""
    base_label, base = load_source(baseline, store=store)
    cand_label, cand = load_source(candidate, store=store)
    return compare(base, cand, config, baseline_label=base_label, candidate_label=cand_label)


def compare(baseline: Predictions, candidate: Predictions, config: RegressConfig | None = None, *,
            baseline_label: str = "baseline", candidate_label: str = "candidate") -> Comparison:
    config = config or RegressConfig()
    shared = [key for key in baseline if key in candidate]
    if config.tasks:
        shared = [key for key in shared if key[0] in set(config.tasks)]
    only_base = sum(1 for k in baseline if k not in candidate)
    only_cand = sum(1 for k in candidate if k not in baseline)
    warnings = []
    if only_base or only_cand:
        msg = (f"item sets differ: {only_base} item(s) only in the baseline, {only_cand} only in the candidate; "
               f"comparing the {len(shared)} shared")
        log.warning(msg)
        warnings.append(msg)
    if not shared:
        raise HarnessError(f"'{baseline_label}' and '{candidate_label}' share no (task, id) items to compare")
    rows = []
    for task in sorted({key[0] for key in shared}):
        keys = [k for k in shared if k[0] == task]
        for metric in _metrics_for(task, config.metrics):
            row = _compare_metric(task, metric, [baseline[k] for k in keys], [candidate[k] for k in keys], config)
            if row is not None:
                rows.append(row)
    if not rows:
        raise HarnessError("no metric could be compared: name metrics with --metrics that fit the items' answer types")
    _apply_verdicts(rows, config)
    return Comparison(baseline_label, candidate_label, config, rows, only_base, only_cand, warnings)


def _metrics_for(task: str, requested: Sequence[str] | None) -> list[str]:
    from harness.tasks import TASKS

    if requested:
        return list(requested)
    base_task = task.split("@")[0]
    if base_task not in TASKS:
        raise HarnessError(f"task '{task}' is not registered: name the metrics to compare with --metrics")
    return list(TASKS.get(base_task).metrics)


def _compare_metric(task: str, name: str, base: list[dict], cand: list[dict],
                    config: RegressConfig) -> MetricComparison | None:
    from harness.metrics import get_metric

    metric = get_metric(name)
    pairs = [(b, c) for b, c in zip(base, cand) if metric.subset is None or b["answer_type"] == metric.subset]
    if not pairs:
        log.info("%s/%s: no '%s' items, skipped", task, name, metric.subset)
        return None
    refs = [str(b["reference"]) for b, _ in pairs]
    changed = sum(1 for b, c in pairs if str(c["reference"]) != str(b["reference"]))
    if changed:
        raise HarnessError(f"{task}/{name}: {changed} shared item(s) have different references in the two runs "
                           f"(first id {next(b['id'] for b, c in pairs if b['reference'] != c['reference'])}): "
                           "they were not evaluated on the same data")
    # n_boot=0: the per-metric intervals are not needed here, the paired bootstrap replaces them
    b_res = metric([str(b["prediction"]) for b, _ in pairs], refs, seed=config.seed, n_boot=0)
    c_res = metric([str(c["prediction"]) for _, c in pairs], refs, seed=config.seed, n_boot=0)
    b_scores, c_scores = np.asarray(b_res.per_sample, float), np.asarray(c_res.per_sample, float)
    if b_scores.size != len(pairs) or c_scores.size != len(pairs):
        raise HarnessError(f"metric '{name}' gives no per-sample scores: it cannot be compared item by item")
    boot = stats.paired_bootstrap(b_scores, c_scores, seed=config.seed, n_boot=config.n_boot)
    p_exact, discordant = None, None
    if np.isin(b_scores, (0.0, 1.0)).all() and np.isin(c_scores, (0.0, 1.0)).all():
        mc = stats.mcnemar_exact(b_scores, c_scores)
        p_exact, discordant = mc.p_value, (mc.baseline_only, mc.candidate_only)
    p_value = p_exact if p_exact is not None else boot.p_value
    return MetricComparison(
        task=task, metric=name, n=len(pairs), higher_is_better=metric.higher_is_better,
        baseline=b_res.value, candidate=c_res.value, delta=c_res.value - b_res.value,
        ci_low=boot.ci_low, ci_high=boot.ci_high, p_bootstrap=boot.p_value, p_exact=p_exact,
        p_value=p_value, p_adjusted=p_value, discordant=discordant,
    )


def _apply_verdicts(rows: list[MetricComparison], config: RegressConfig) -> None:
    adjusted = stats.holm([r.p_value for r in rows]) if config.correction == "holm" else [r.p_value for r in rows]
    for row, p in zip(rows, adjusted):
        row.p_adjusted = p
        significant = p < config.alpha
        if significant and row.worse_by > config.max_drop:
            row.verdict = REGRESSED
        elif significant and row.worse_by < 0:
            row.verdict = IMPROVED
        else:
            row.verdict = NO_CHANGE
