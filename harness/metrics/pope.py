"""POPE-style object-probing scores (Li et al., 2023, "Evaluating Object Hallucination in Large
Vision-Language Models", EMNLP): yes/no questions about findings that are present ("yes") and absent
("no") in balanced numbers, scored as a binary classifier whose positive class is "yes".

- ``pope_accuracy``: share of probes answered right.
- ``pope_precision``: of the probes answered "yes", the share whose finding is present.
- ``pope_recall``: of the present findings, the share answered "yes".
- ``pope_f1``: ``2 TP / (2 TP + FP + FN)``, POPE's headline number.
- ``pope_yes_ratio``: share of probes answered "yes" (0.5 for an unbiased model on a balanced set; it has
  no good direction, so it is reported but never gated).
- ``pope_yes_bias`` (lower is better): the yes-ratio's distance from the share of probes whose finding is
  present, ``|FP - FN| / N`` (``|yes_ratio - 0.5|`` on a balanced set). A model answering "yes" to
  everything on a balanced set scores 0.5 however its F1 looks; the gate tests it beside accuracy.

An answer is read with :func:`harness.metrics.vqa.read_yes_no`; anything that is not a clear "yes"
counts as "no", as in POPE. A model that answers "no" to everything scores accuracy 0.5, recall 0 and F1 0
on a balanced set; one that answers "yes" to everything scores recall 1, precision 0.5, F1 0.67, accuracy
0.5 and a yes-bias of 0.5: F1 rewards saying "yes", accuracy and the yes-bias together do not.

Per-sample scores (the metric contract) are each probe's 0/1 correctness for accuracy and its 0/1 "yes"
for the yes-ratio; for precision/recall/F1 and the yes-bias they are the probe's own value where defined.
The aggregate is always the pooled value; :func:`pope_counts` gives the per-probe counts that the paired
bootstrap sums (``harness.stats.items``). Intervals: the pooled proportions get the bootstrap over probes
hulled with Wilson on their pooled counts, the yes-bias the bootstrap (``harness.stats.intervals``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics.base import ItemForm, Metric, MetricResult
from harness.metrics.registry import metric
from harness.stats.intervals import bootstrap_interval, ratio_interval

POPE_METRICS = ("pope_accuracy", "pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio", "pope_yes_bias")
_TP, _FP, _FN, _TN = range(4)


def pope_counts(predictions: Sequence[object], references: Sequence[object]) -> np.ndarray:
    """``(n, 4)`` one-hot TP, FP, FN, TN per probe ("yes" is the positive class)."""
    from harness.metrics.vqa import read_yes_no

    rows = []
    for prediction, reference in zip(predictions, references):
        said_yes = read_yes_no(prediction) == "yes"
        present = str(reference).strip().lower() == "yes"
        rows.append((said_yes and present, said_yes and not present, present and not said_yes,
                     not present and not said_yes))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


def pope_aggregate(name: str, sums: np.ndarray) -> np.ndarray:
    """Metric value(s) from counts summed over probes: ``(..., 4)`` -> ``(...)``; an empty ratio is 0."""
    tp, fp, fn, tn = (sums[..., i] for i in range(4))
    total = tp + fp + fn + tn
    if name == "pope_yes_bias":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, np.abs(fp - fn) / np.where(total > 0, total, 1), 0.0)
    num, den = {
        "pope_accuracy": (tp + tn, total),
        "pope_precision": (tp, tp + fp),
        "pope_recall": (tp, tp + fn),
        "pope_f1": (2 * tp, 2 * tp + fp + fn),
        "pope_yes_ratio": (tp + fp, total),
    }[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def score_pope(name: str, predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
               n_boot: int = 1000) -> MetricResult:
    counts = pope_counts(predictions, references)
    n = len(counts)
    value = float(pope_aggregate(name, counts.sum(axis=0))) if n else float("nan")
    if name == "pope_yes_bias":
        low, high = bootstrap_interval(counts, lambda s: pope_aggregate(name, s), seed=seed, n_boot=n_boot)
    else:
        numerator, denominator = _ratio_parts(name)
        low, high = ratio_interval(counts, numerator, denominator, seed=seed, n_boot=n_boot)
    return MetricResult(name=name, value=value, ci_low=low, ci_high=high, n=n,
                        higher_is_better=name != "pope_yes_bias",
                        per_sample=[float(x) for x in pope_aggregate(name, counts)])


def _ratio_parts(name: str):
    """(numerator, denominator) of a pooled POPE proportion from summed counts (F1 as TP / (TP + (FP + FN) / 2))."""
    def count(*which: int):
        return lambda s: sum(s[..., i] for i in which)

    return {
        "pope_accuracy": (count(_TP, _TN), count(_TP, _FP, _FN, _TN)),
        "pope_precision": (count(_TP), count(_TP, _FP)),
        "pope_recall": (count(_TP), count(_TP, _FN)),
        "pope_f1": (count(_TP), lambda s: s[..., _TP] + (s[..., _FP] + s[..., _FN]) / 2),
        "pope_yes_ratio": (count(_TP, _FP), count(_TP, _FP, _FN, _TN)),
    }[name]


@metric
def _pope_metric(name: str, description: str) -> Metric:
    def compute(predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
                n_boot: int = 1000) -> MetricResult:
        return score_pope(name, predictions, references, seed=seed, n_boot=n_boot)

    return Metric(name=name, higher_is_better=name != "pope_yes_bias", compute=compute, subset="closed",
                  description=description, items=ItemForm("pope", pope_counts, lambda s: pope_aggregate(name, s)))


pope_accuracy = _pope_metric("pope_accuracy", "POPE probes: share of present/absent-finding probes answered right.")
pope_precision = _pope_metric("pope_precision", "POPE probes: of the 'yes' answers, the share whose finding is present.")
pope_recall = _pope_metric("pope_recall", "POPE probes: of the present findings, the share answered 'yes'.")
pope_f1 = _pope_metric("pope_f1", "POPE probes: F1 of 'yes' answers against present findings (the headline).")
pope_yes_ratio = _pope_metric(
    "pope_yes_ratio", "POPE probes: share of 'yes' answers (0.5 is unbiased on a balanced set; not gated).")
pope_yes_bias = _pope_metric(
    "pope_yes_bias", "POPE probes: distance of the yes-ratio from the share of present findings, |FP - FN| / N "
    "(lower is better; a yes-to-everything model scores 0.5 on a balanced set).")
