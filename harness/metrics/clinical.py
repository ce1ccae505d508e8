"""Clinical efficacy of generated reports: CheXpert-label precision / recall / F1 and hallucination rate.

Both reports are labelled with :mod:`harness.findings.labeler`. A finding counts when its label
is positive (1); uncertain and negative labels are not positive findings (as in the CE metrics of R2Gen
and its successors).

- ``chexpert_{precision,recall,f1}_micro``: TP / FP / FN summed over reports x 14 observations.
- ``chexpert_f1_macro``: the mean over observations of each observation's F1; observations that are
  positive in neither the predictions nor the references (TP + FP + FN = 0) are left out of the mean
  instead of counting as 0 or 1.
- ``hallucination_rate`` (lower is better): of all positive findings in the generated reports (all
  observations except "No Finding", which is not a finding), the share whose observation the
  reference does not support (reference label neither positive nor uncertain). Pooled over reports.

Per-sample scores (for paired tests) are the per-report versions: F1 / precision / recall over that
report's 14 labels (1.0 when the numerator and denominator are both 0, i.e. nothing to find and nothing
claimed) and the report's own hallucination share (0.0 when it claims no finding). The aggregate is
the pooled value; the bootstrap resamples per-report TP/FP/FN counts and recomputes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.findings.labeler import LABELER_VERSION, OBSERVATIONS, POSITIVE, UNCERTAIN, label_report
from harness.metrics.base import ItemForm, Metric, MetricResult, counted_results
from harness.metrics.registry import metric
from harness.stats.intervals import bootstrap_interval, ratio_interval

CLINICAL_METRICS = (
    "chexpert_f1_micro", "chexpert_f1_macro", "chexpert_precision_micro", "chexpert_recall_micro",
    "hallucination_rate",
)
_FINDINGS = np.array([o != "No Finding" for o in OBSERVATIONS])


def label_matrix(reports: Sequence[object]) -> np.ndarray:
    """``(n, 14)`` labels: 1 positive, 0 negative, -1 uncertain, NaN blank."""
    rows = [[np.nan if v is None else v for v in label_report(str(r)).values()] for r in reports]
    return np.array(rows, dtype=np.float64).reshape(len(reports), len(OBSERVATIONS))


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return precision, recall, f1


def _macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """``(..., 14)`` summed counts -> mean F1 over observations with any positive."""
    present = (tp + fp + fn) > 0
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    with np.errstate(invalid="ignore"):
        return np.where(present.any(-1), (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1), np.nan)


def clinical_counts(predictions: Sequence[object], references: Sequence[object]) -> np.ndarray:
    """``(n, 4, 14)`` per-report counts: TP, FP, FN, and unsupported (hallucinated) positives."""
    pred, ref = label_matrix(predictions), label_matrix(references)
    pred_pos, ref_pos = pred == POSITIVE, ref == POSITIVE
    supported = ref_pos | (ref == UNCERTAIN)
    tp = pred_pos & ref_pos
    fp = pred_pos & ~ref_pos
    fn = ~pred_pos & ref_pos
    hallucinated = pred_pos & ~supported & _FINDINGS
    return np.stack([tp, fp, fn, hallucinated], axis=1).astype(np.float64)


def _aggregate(name: str, counts: np.ndarray) -> np.ndarray:
    """Metric value(s) from counts summed over reports: ``(..., 4, 14)`` -> ``(...)``."""
    tp, fp, fn, hal = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :], counts[..., 3, :]
    if name == "chexpert_f1_macro":
        return _macro_f1(tp, fp, fn)
    if name == "hallucination_rate":
        claimed = ((tp + fp) * _FINDINGS).sum(-1)
        return _ratio(hal.sum(-1), claimed)
    precision, recall, f1 = _prf(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    return {"chexpert_f1_micro": f1, "chexpert_precision_micro": precision, "chexpert_recall_micro": recall}[name]


def _per_report(name: str, counts: np.ndarray) -> np.ndarray:
    tp, fp, fn, hal = (counts[:, i, :].sum(-1) for i in range(4))
    if name == "hallucination_rate":
        claimed = ((counts[:, 0, :] + counts[:, 1, :]) * _FINDINGS).sum(-1)
        return _ratio(hal, claimed, empty=0.0)
    if name == "chexpert_precision_micro":
        return np.where(tp + fp > 0, _ratio(tp, tp + fp), (fn == 0).astype(float))
    if name == "chexpert_recall_micro":
        return np.where(tp + fn > 0, _ratio(tp, tp + fn), (fp == 0).astype(float))
    return np.where(tp + fp + fn > 0, _ratio(2 * tp, 2 * tp + fp + fn), 1.0)


def _bounds(name: str, counts: np.ndarray, *, seed: int, n_boot: int) -> tuple[float, float]:
    """Macro F1: the percentile bootstrap over reports; the pooled ratios: that bootstrap hulled with the Wilson
    interval of their pooled counts (F1 as TP / (TP + (FP + FN) / 2)), see ``harness.stats.intervals``."""
    if name == "chexpert_f1_macro":
        return bootstrap_interval(counts, lambda c: _aggregate(name, c), seed=seed, n_boot=n_boot)

    def total(i: int):
        return lambda c: c[..., i, :].sum(-1)

    tp, fp, fn = total(0), total(1), total(2)
    parts = {
        "chexpert_precision_micro": (tp, lambda c: tp(c) + fp(c)),
        "chexpert_recall_micro": (tp, lambda c: tp(c) + fn(c)),
        "chexpert_f1_micro": (tp, lambda c: tp(c) + (fp(c) + fn(c)) / 2),
        "hallucination_rate": (total(3), lambda c: ((c[..., 0, :] + c[..., 1, :]) * _FINDINGS).sum(-1)),
    }
    numerator, denominator = parts[name]
    return ratio_interval(counts, numerator, denominator, seed=seed, n_boot=n_boot)


def score_clinical(
    names: Sequence[str], predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, MetricResult]:
    """Label every report once and score all ``names`` (any of :data:`CLINICAL_METRICS`)."""
    unknown = [n for n in names if n not in CLINICAL_METRICS]
    if unknown:
        raise ValueError(f"not clinical metrics: {unknown}")
    return counted_results(names, clinical_counts(predictions, references), aggregate=_aggregate, bounds=_bounds,
                           per_item=_per_report, lower_is_better=("hallucination_rate",), seed=seed, n_boot=n_boot)


def _claimed(sums: np.ndarray) -> float:
    """What a hallucination rate rests on: the positive findings the reports claim (summed ``(4, 14)`` counts)."""
    return float(((sums[0] + sums[1]) * _FINDINGS).sum())


@metric
def _clinical_metric(name: str, description: str) -> Metric:
    def compute(
        predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
    ) -> MetricResult:
        return score_clinical([name], predictions, references, seed=seed, n_boot=n_boot)[name]

    return Metric(
        name=name, higher_is_better=name != "hallucination_rate", compute=compute, subset="report",
        description=description, version=LABELER_VERSION,  # every score here is read through the labeler
        items=ItemForm("clinical", clinical_counts, lambda s: _aggregate(name, s),
                       "macro" if name == "chexpert_f1_macro" else "corpus",
                       _claimed if name == "hallucination_rate" else None),
    )


chexpert_f1_micro = _clinical_metric("chexpert_f1_micro", "Micro F1 of positive CheXpert labels (14 observations).")
chexpert_f1_macro = _clinical_metric("chexpert_f1_macro", "Macro F1 over CheXpert observations with any positive.")
chexpert_precision_micro = _clinical_metric("chexpert_precision_micro", "Micro precision of positive CheXpert labels.")
chexpert_recall_micro = _clinical_metric("chexpert_recall_micro", "Micro recall of positive CheXpert labels.")
hallucination_rate = _clinical_metric(
    "hallucination_rate", "Share of generated positive findings the reference does not support (lower is better)."
)
