"""Every metric as per-item sufficient statistics plus an aggregate formula.

A metric's value on any multiset of items is ``aggregate(sum of the items' statistics)``, so a bootstrap
resample (a vector of counts) gives the metric itself on the resampled items, whether it is a mean of
per-item scores or a pooled (corpus) value. Tests and intervals built on these statistics are therefore on
the quantity the metric reports, never on a per-item proxy (Koehn, 2004; Berg-Kirkpatrick et al., 2012):

- mean metrics (accuracy, open recall, ROUGE-L, CIDEr, ``false_finding_rate``, any plugin whose value is the
  mean of its per-sample scores): statistics ``(score, 1)``, aggregate ``sum / count``. Items scored NaN
  (left out of a metric's denominator, as ``closed_accuracy_llava_med`` does) count in neither.
- corpus metrics recompute their corpus formula: BLEU-n from summed n-gram matches and lengths; micro
  precision/recall/F1 from summed TP/FP/FN (``finding_*``, ``chexpert_*_micro``); ``laterality_accuracy``
  from summed lateralised findings; ``hallucination_rate`` from summed unsupported and claimed findings;
  the POPE scores from summed TP/FP/FN/TN.
- macro metrics (``chexpert_f1_macro``) take the mean of per-label F1 on the summed per-label counts.

``check`` compares an aggregate on the full set with the metric's own value, so a metric whose definition
changes without this module following is an error, not a silently different test. METEOR has no form here
(its statistics come from a Java scorer per call) and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.errors import HarnessError

Aggregate = Callable[[np.ndarray], np.ndarray]  # (B, ...) summed statistics -> (B,) metric values

UNSUPPORTED = {"meteor": "METEOR's statistics come from a Java scorer per call; use rouge_l, bleu or cider instead"}
CLINICAL = ("chexpert_f1_micro", "chexpert_precision_micro", "chexpert_recall_micro", "chexpert_f1_macro",
            "hallucination_rate")
FINDINGS = ("finding_precision", "finding_recall", "finding_f1", "laterality_accuracy")
BLEU = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "bleu")


@dataclass
class ItemStatistics:
    stats: np.ndarray  # (n, ...) per-item sufficient statistics
    aggregate: Aggregate
    kind: str  # "mean", "corpus" or "macro"
    support: Callable[[np.ndarray], float] | None = None  # what the value rests on (e.g. claimed findings)

    def value(self) -> float:
        return float(self.aggregate(self.stats.sum(axis=0)[None])[0])

    def subset(self, index: Sequence[int]) -> ItemStatistics:
        """The same metric on the items at ``index`` (in that order)."""
        return ItemStatistics(self.stats[np.asarray(index, dtype=int)], self.aggregate, self.kind, self.support)


def item_statistics(name: str, predictions: Sequence[object], references: Sequence[object], *,
                    cache: dict | None = None) -> ItemStatistics:
    """Per-item statistics and aggregate of metric ``name`` (``cache`` shares labelling between metrics)."""
    if name in UNSUPPORTED:
        raise HarnessError(f"metric '{name}' has no per-item statistics: {UNSUPPORTED[name]}")
    cache = {} if cache is None else cache
    if name.startswith("pope_"):
        return from_array(name, _cached(cache, "pope", predictions, references))
    if name in CLINICAL:
        return from_array(name, _cached(cache, "clinical", predictions, references))
    if name in FINDINGS:
        return from_array(name, _cached(cache, "findings", predictions, references))
    if name in BLEU:
        return from_array(name, _cached(cache, "bleu", predictions, references))
    return from_array(name, _mean_stats(name, predictions, references))


def from_array(name: str, stats: np.ndarray) -> ItemStatistics:
    """The statistics of metric ``name`` from their array (as ``item_statistics`` built them, e.g. from a cache)."""
    stats = np.asarray(stats, dtype=np.float64)
    if name.startswith("pope_"):
        from harness.regress.pope import pope_aggregate

        return ItemStatistics(stats, lambda s: pope_aggregate(name, s), "corpus")
    if name in CLINICAL:
        return _clinical(name, stats)
    if name in FINDINGS:
        return ItemStatistics(stats, _findings_aggregate(name), "corpus")
    if name in BLEU:
        from harness.metrics.coco_ngram import bleu_from_stats

        if name == "bleu":
            return ItemStatistics(stats, lambda s: bleu_from_stats(s).mean(axis=-1), "corpus")
        k = int(name[-1]) - 1
        return ItemStatistics(stats, lambda s: bleu_from_stats(s)[..., k], "corpus")
    return ItemStatistics(stats, lambda s: _ratio(s[..., 0], s[..., 1]), "mean")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _cached(cache: dict, family: str, predictions, references) -> np.ndarray:
    key = (family, id(predictions))
    if key not in cache:
        cache[key] = _COUNTS[family](predictions, references)
    return cache[key]


def _mean_stats(name: str, predictions, references) -> np.ndarray:
    from harness.metrics import get_metric

    result = get_metric(name)(list(predictions), list(references), seed=0, n_boot=0)
    scores = np.asarray(result.per_sample, dtype=np.float64)
    if scores.size != len(predictions):
        raise HarnessError(f"metric '{name}' gives no per-sample scores: it cannot be compared item by item")
    valid = ~np.isnan(scores)
    mean = float(scores[valid].mean()) if valid.any() else float("nan")
    if valid.any() and not np.isclose(mean, result.value, rtol=1e-9, atol=1e-9):
        raise HarnessError(f"metric '{name}' is corpus-level (value {result.value:.6g}, per-sample mean "
                           f"{mean:.6g}) and has no per-item statistics here")
    return np.stack([np.where(valid, scores, 0.0), valid.astype(np.float64)], axis=1)


def _pope_counts(predictions, references) -> np.ndarray:
    from harness.regress.pope import pope_counts

    return pope_counts(predictions, references)


def _clinical_counts(predictions, references) -> np.ndarray:
    from harness.metrics.clinical import clinical_counts

    return clinical_counts(predictions, references)  # (n, 4, 14): TP, FP, FN, unsupported


def _finding_counts(predictions, references) -> np.ndarray:
    from harness.metrics.synth_findings import finding_counts

    return finding_counts(predictions, references)  # (n, 6): TP, FP, FN, lateral right, lateral, false


def _bleu_counts(predictions, references) -> np.ndarray:
    from harness.metrics.coco_java import ptb_tokenize
    from harness.metrics.coco_ngram import bleu_stats, ngram_counts

    n = len(predictions)
    tokens = ptb_tokenize([str(p) for p in predictions] + [str(r) for r in references])
    return np.array([bleu_stats(ngram_counts(h), ngram_counts(r)) for h, r in zip(tokens[:n], tokens[n:])],
                    dtype=np.float64).reshape(n, 10)


_COUNTS = {"pope": _pope_counts, "clinical": _clinical_counts, "findings": _finding_counts, "bleu": _bleu_counts}


def _clinical(name: str, stats: np.ndarray) -> ItemStatistics:
    from harness.findings.labeler import OBSERVATIONS

    findings = np.array([o != "No Finding" for o in OBSERVATIONS], dtype=np.float64)

    def aggregate(s: np.ndarray) -> np.ndarray:
        tp, fp, fn, hal = s[..., 0, :], s[..., 1, :], s[..., 2, :], s[..., 3, :]
        if name == "hallucination_rate":
            return _ratio(hal.sum(-1), ((tp + fp) * findings).sum(-1))
        if name == "chexpert_f1_macro":
            present = (tp + fp + fn) > 0
            f1 = _ratio(2 * tp, 2 * tp + fp + fn)
            return np.where(present.any(-1), (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1), np.nan)
        tp, fp, fn = tp.sum(-1), fp.sum(-1), fn.sum(-1)
        return {"chexpert_f1_micro": _ratio(2 * tp, 2 * tp + fp + fn), "chexpert_precision_micro": _ratio(tp, tp + fp),
                "chexpert_recall_micro": _ratio(tp, tp + fn)}[name]

    def claimed(s: np.ndarray) -> float:
        return float(((s[0] + s[1]) * findings).sum())

    kind = "macro" if name == "chexpert_f1_macro" else "corpus"
    return ItemStatistics(stats, aggregate, kind, claimed if name == "hallucination_rate" else None)


def _findings_aggregate(name: str) -> Aggregate:
    def aggregate(s: np.ndarray) -> np.ndarray:
        tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
        if name == "finding_precision":
            return _ratio(tp, tp + fp)
        if name == "finding_recall":
            return _ratio(tp, tp + fn)
        if name == "finding_f1":
            return _ratio(2 * tp, 2 * tp + fp + fn)
        return _ratio(s[..., 3], s[..., 4])  # laterality_accuracy

    return aggregate


def check(name: str, stats: ItemStatistics, metric_value: float, side: str) -> None:
    """The aggregate on the full set must be the metric's own value: the test is on what eval reports."""
    value = stats.value()
    if np.isnan(value) and np.isnan(metric_value):
        return
    if not np.isclose(value, metric_value, rtol=1e-6, atol=1e-9):
        raise HarnessError(f"metric '{name}': the per-item statistics give {value:.6g} on the {side} but the metric "
                           f"gives {metric_value:.6g}; harness.stats.items no longer follows its definition")
