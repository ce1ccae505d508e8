"""POPE-style object-probing scores (Li et al., 2023, "Evaluating Object Hallucination in Large
Vision-Language Models", EMNLP): yes/no questions about findings that are present ("yes") and absent
("no") in balanced numbers, scored as a binary classifier whose positive class is "yes".

- ``pope_accuracy``: share of probes answered right.
- ``pope_precision``: of the probes answered "yes", the share whose finding is present.
- ``pope_recall``: of the present findings, the share answered "yes".
- ``pope_f1``: ``2 TP / (2 TP + FP + FN)``, POPE's headline number.
- ``pope_yes_ratio``: share of probes answered "yes" (0.5 for an unbiased model on a balanced set; it has
  no good direction, so it is reported but never gated).

An answer is read with :func:`harness.metrics.vqa.read_yes_no`; anything that is not a clear "yes"
counts as "no", as in POPE. A model that answers "no" to everything scores accuracy 0.5, recall 0 and F1 0
on a balanced set; one that answers "yes" to everything scores recall 1, precision 0.5, F1 0.67.

Per-sample scores (the metric contract) are each probe's 0/1 correctness for accuracy and its 0/1 "yes"
for the yes-ratio; for precision/recall/F1 they are the probe's own value where defined. The aggregate
is always the pooled value; :func:`pope_counts` gives the per-probe counts that the regression gate's
paired bootstrap sums (``harness.regress.paired``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics.base import Metric, MetricResult
from harness.metrics.bootstrap import bootstrap_ci

POPE_METRICS = ("pope_accuracy", "pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio")
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
    low, high = bootstrap_ci(counts, lambda s: pope_aggregate(name, s), seed=seed, n_boot=n_boot)
    return MetricResult(name=name, value=value, ci_low=low, ci_high=high, n=n,
                        higher_is_better=True, per_sample=[float(x) for x in pope_aggregate(name, counts)])


def _pope_metric(name: str, description: str) -> Metric:
    def compute(predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
                n_boot: int = 1000) -> MetricResult:
        return score_pope(name, predictions, references, seed=seed, n_boot=n_boot)

    return Metric(name=name, higher_is_better=True, compute=compute, subset="closed", description=description)


pope_accuracy = _pope_metric("pope_accuracy", "POPE probes: share of present/absent-finding probes answered right.")
pope_precision = _pope_metric("pope_precision", "POPE probes: of the 'yes' answers, the share whose finding is present.")
pope_recall = _pope_metric("pope_recall", "POPE probes: of the present findings, the share answered 'yes'.")
pope_f1 = _pope_metric("pope_f1", "POPE probes: F1 of 'yes' answers against present findings (the headline).")
pope_yes_ratio = _pope_metric(
    "pope_yes_ratio", "POPE probes: share of 'yes' answers (0.5 is unbiased on a balanced set; not gated).")
