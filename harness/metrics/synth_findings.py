"""Exact factuality of reports on the synthetic suite: findings read back from the text and matched.

Both the generated report and the reference are read with :func:`harness.findings.synthetic.read_report`.
The reference is written from the case's labels in the suite's fixed vocabulary, so reading it gives the
labels exactly; a generated report in the same vocabulary is read exactly too. A generated finding
matches a true one when kind, side, level and size are all equal (``match_counts`` over all four
attributes); each true finding matches at most once.

- ``finding_precision`` / ``finding_recall`` / ``finding_f1``: **micro-pooled** over reports: TP, FP and
  FN are summed over all reports, then ``P = TP/(TP+FP)``, ``R = TP/(TP+FN)``, ``F1 = 2TP/(2TP+FP+FN)``.
  So recall is the share of all true lesions the reports state correctly, and precision the share of all
  stated findings that are true. ``n`` = reports; the bootstrap resamples reports (their counts), and the
  interval is hulled with the Wilson interval of the pooled counts (``harness.stats.intervals``).
- ``laterality_accuracy``: of the asserted findings whose kind the case has, the share on a side where the
  case has that kind. Pooled over those findings; ``n`` = reports (the resampled unit), and reports that
  assert no such finding add nothing to either count.
- ``false_finding_rate`` (lower is better): the share of reports that assert at least one finding the
  case does not have (no true finding matches it on all four attributes). ``n`` = reports.

A pooled value over an empty denominator (no finding stated at all, e.g. under a blanked image) is 0, as
in ``harness.metrics.clinical``, so every value is a number.

Per-sample scores (for paired tests) are each report's own value: its F1 / precision / recall (1.0 when
the report has nothing to find and claims nothing, as in ``harness.metrics.clinical``), its laterality
share (1.0 when it asserts no finding of a present kind) and its 0/1 false-finding flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.findings.synthetic import match_counts, read_report
from harness.metrics.base import ItemForm, Metric, MetricResult, counted_results
from harness.metrics.registry import metric
from harness.stats.intervals import mean_interval, ratio_interval

FINDING_METRICS = (
    "finding_precision", "finding_recall", "finding_f1", "laterality_accuracy", "false_finding_rate",
)
# per-report counts: tp, fp, fn, lateral_right, lateral_total, false_finding (0/1)
_TP, _FP, _FN, _LAT_OK, _LAT_N, _FALSE = range(6)


def finding_counts(predictions: Sequence[object], references: Sequence[object]) -> np.ndarray:
    """``(n, 6)`` per-report counts: TP, FP, FN, correctly lateralised, lateralised, has a false finding."""
    rows = []
    for prediction, reference in zip(predictions, references):
        said = read_report(str(prediction)).asserted
        truth = read_report(str(reference)).asserted
        tp, fp, fn = match_counts(said, truth)
        sides = {}
        for finding in truth:
            sides.setdefault(finding.kind, set()).add(finding.side)
        lateral = [f for f in said if f.kind in sides]
        right = sum(f.side in sides[f.kind] for f in lateral)
        rows.append((tp, fp, fn, right, len(lateral), float(fp > 0)))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 6)


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def _aggregate(name: str, sums: np.ndarray, n: int) -> np.ndarray:
    """Metric value(s) from counts summed over reports: ``(..., 6)`` -> ``(...)``."""
    tp, fp, fn = sums[..., _TP], sums[..., _FP], sums[..., _FN]
    # an empty denominator (nothing stated, nothing to find) scores 0, as the clinical metrics do: a
    # value is always a number the results store can hold
    if name == "finding_precision":
        return _ratio(tp, tp + fp, 0.0)
    if name == "finding_recall":
        return _ratio(tp, tp + fn, 0.0)
    if name == "finding_f1":
        return _ratio(2 * tp, 2 * tp + fp + fn, 0.0)
    if name == "laterality_accuracy":
        return _ratio(sums[..., _LAT_OK], sums[..., _LAT_N], 0.0)
    return sums[..., _FALSE] / max(n, 1)


def _per_report(name: str, counts: np.ndarray) -> np.ndarray:
    tp, fp, fn = counts[:, _TP], counts[:, _FP], counts[:, _FN]
    if name == "finding_precision":
        return _ratio(tp, tp + fp, 1.0)
    if name == "finding_recall":
        return _ratio(tp, tp + fn, 1.0)
    if name == "finding_f1":
        return _ratio(2 * tp, 2 * tp + fp + fn, 1.0)
    if name == "laterality_accuracy":
        return _ratio(counts[:, _LAT_OK], counts[:, _LAT_N], 1.0)
    return counts[:, _FALSE]


def _bounds(name: str, counts: np.ndarray, *, seed: int, n_boot: int) -> tuple[float, float]:
    """The share of reports with a false finding is a proportion of reports (Wilson); the pooled ratios get the
    bootstrap over reports hulled with Wilson on their pooled counts (``harness.stats.intervals``)."""
    if name == "false_finding_rate":
        return mean_interval(counts[:, _FALSE], seed=seed, n_boot=n_boot)
    tp, fp, fn = (lambda s: s[..., _TP]), (lambda s: s[..., _FP]), (lambda s: s[..., _FN])
    numerator, denominator = {
        "finding_precision": (tp, lambda s: tp(s) + fp(s)),
        "finding_recall": (tp, lambda s: tp(s) + fn(s)),
        "finding_f1": (tp, lambda s: tp(s) + (fp(s) + fn(s)) / 2),  # 2TP / (2TP + FP + FN)
        "laterality_accuracy": ((lambda s: s[..., _LAT_OK]), (lambda s: s[..., _LAT_N])),
    }[name]
    return ratio_interval(counts, numerator, denominator, seed=seed, n_boot=n_boot)


def score_findings(
    names: Sequence[str], predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, MetricResult]:
    """Read every report once and score all ``names`` (any of :data:`FINDING_METRICS`)."""
    unknown = [n for n in names if n not in FINDING_METRICS]
    if unknown:
        raise ValueError(f"not synthetic finding metrics: {unknown}")
    counts = finding_counts(predictions, references)
    return counted_results(names, counts, aggregate=lambda name, sums: _aggregate(name, sums, len(counts)),
                           bounds=_bounds, per_item=_per_report, lower_is_better=("false_finding_rate",),
                           seed=seed, n_boot=n_boot)


@metric
def _finding_metric(name: str, description: str) -> Metric:
    def compute(
        predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
    ) -> MetricResult:
        return score_findings([name], predictions, references, seed=seed, n_boot=n_boot)[name]

    # the pooled ratios recompute from summed counts; false_finding_rate is a mean over reports: no form needed
    items = None if name == "false_finding_rate" else ItemForm("findings", finding_counts, lambda s: _aggregate(name, s, 1))
    return Metric(name=name, higher_is_better=name != "false_finding_rate", compute=compute, subset="report",
                  description=description, items=items)


finding_precision = _finding_metric(
    "finding_precision", "Synthetic suite: share of stated findings that match a true one (kind, side, level, size).")
finding_recall = _finding_metric(
    "finding_recall", "Synthetic suite: share of true findings stated exactly (kind, side, level, size).")
finding_f1 = _finding_metric("finding_f1", "Synthetic suite: micro F1 of stated vs true findings (exact match).")
laterality_accuracy = _finding_metric(
    "laterality_accuracy", "Synthetic suite: of stated findings whose kind is present, the share on the right side.")
false_finding_rate = _finding_metric(
    "false_finding_rate", "Synthetic suite: share of reports stating a finding the case lacks (lower is better).")
