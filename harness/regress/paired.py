"""One paired statistic per metric: the paired bootstrap of the metric itself.

Every metric is expressed as per-item *sufficient statistics* plus an *aggregate* that maps their sum over
any multiset of items to the metric's value. A bootstrap resample is a vector of counts (how often each
item is drawn); the same counts are applied to the baseline's and the candidate's statistics, so each
resample yields the corpus metric of both sides on the same items and their difference. From that one
distribution come the interval (percentile), the p-value (the interval inverted: the two-sided tail mass
beyond 0) and, through the delta on the full set, the verdict, all on the scale the metric reports:

- mean metrics (accuracy, open recall, ROUGE-L, CIDEr, any plugin whose value is the mean of its
  per-sample scores): statistics ``(score, 1)``, aggregate ``sum / count``. Items scored NaN (left out of a
  metric's denominator, as ``closed_accuracy_llava_med`` does) count in neither.
- corpus metrics recompute their corpus formula on each resample: BLEU-n from summed n-gram matches and
  lengths; micro precision/recall/F1 from summed TP/FP/FN; ``hallucination_rate`` from summed unsupported
  and claimed findings; the POPE scores from summed TP/FP/FN/TN.
- macro metrics (``chexpert_f1_macro``) resample per-label counts and take the mean of per-label F1 on
  each resample: a macro value per resample, not a per-report proxy.

``check`` compares each aggregate on the full set with the metric's own value (computed by the metric), so
a metric whose definition changes without this module following is an error, not a silently different
test. METEOR has no such form here (its statistics come from a Java scorer per call) and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError

Aggregate = Callable[[np.ndarray], np.ndarray]  # (B, ...) summed statistics -> (B,) metric values


@dataclass
class ItemStatistics:
    stats: np.ndarray  # (n, ...) per-item sufficient statistics
    aggregate: Aggregate
    kind: str  # "mean", "corpus" or "macro"
    support: Callable[[np.ndarray], float] | None = None  # what the value rests on (e.g. claimed findings)

    def value(self) -> float:
        return float(self.aggregate(self.stats.sum(axis=0)[None])[0])


@dataclass(frozen=True)
class PairedResult:
    baseline: float
    candidate: float
    delta: float  # candidate - baseline on the full item set
    ci_low: float  # percentile interval of the resampled delta
    ci_high: float
    p_value: float  # two-sided: 2 x the smaller tail mass of the resampled delta beyond 0
    se_delta: float  # standard deviation of the resampled delta
    se_baseline: float  # standard deviation of the resampled baseline value (for the minimum detectable drop)
    n_boot: int


UNSUPPORTED = {"meteor": "METEOR's statistics come from a Java scorer per call; gate rouge_l, bleu or cider instead"}


def item_statistics(name: str, predictions: Sequence[object], references: Sequence[object], *,
                    cache: dict | None = None) -> ItemStatistics:
    """Per-item statistics and aggregate of metric ``name`` (``cache`` shares labelling between metrics)."""
    if name in UNSUPPORTED:
        raise HarnessError(f"metric '{name}' cannot be gated: {UNSUPPORTED[name]}")
    cache = {} if cache is None else cache
    if name.startswith("pope_"):
        return _pope(name, predictions, references, cache)
    if name in ("chexpert_f1_micro", "chexpert_precision_micro", "chexpert_recall_micro", "chexpert_f1_macro",
                "hallucination_rate"):
        return _clinical(name, predictions, references, cache)
    if name in ("finding_precision", "finding_recall", "finding_f1", "laterality_accuracy"):
        return _findings(name, predictions, references, cache)
    if name in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "bleu"):
        return _bleu(name, predictions, references, cache)
    return _mean(name, predictions, references)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _mean(name: str, predictions, references) -> ItemStatistics:
    from harness.metrics import get_metric

    result = get_metric(name)(list(predictions), list(references), seed=0, n_boot=0)
    scores = np.asarray(result.per_sample, dtype=np.float64)
    if scores.size != len(predictions):
        raise HarnessError(f"metric '{name}' gives no per-sample scores: it cannot be compared item by item")
    valid = ~np.isnan(scores)
    mean = float(scores[valid].mean()) if valid.any() else float("nan")
    if valid.any() and not np.isclose(mean, result.value, rtol=1e-9, atol=1e-9):
        raise HarnessError(f"metric '{name}' is corpus-level (value {result.value:.6g}, per-sample mean "
                           f"{mean:.6g}) and the gate has no paired statistic for it")
    stats = np.stack([np.where(valid, scores, 0.0), valid.astype(np.float64)], axis=1)
    return ItemStatistics(stats, lambda s: _ratio(s[..., 0], s[..., 1]), "mean")


def _pope(name, predictions, references, cache) -> ItemStatistics:
    from harness.regress.pope import pope_aggregate, pope_counts

    key = ("pope", id(predictions))
    if key not in cache:
        cache[key] = pope_counts(predictions, references)
    return ItemStatistics(cache[key], lambda s: pope_aggregate(name, s), "corpus")


def _clinical(name, predictions, references, cache) -> ItemStatistics:
    from harness.metrics.chexpert_labeler import OBSERVATIONS
    from harness.metrics.clinical import clinical_counts

    key = ("clinical", id(predictions))
    if key not in cache:
        cache[key] = clinical_counts(predictions, references)  # (n, 4, 14): TP, FP, FN, unsupported
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
    return ItemStatistics(cache[key], aggregate, kind, claimed if name == "hallucination_rate" else None)


def _findings(name, predictions, references, cache) -> ItemStatistics:
    from harness.metrics.synth_findings import finding_counts

    key = ("findings", id(predictions))
    if key not in cache:
        cache[key] = finding_counts(predictions, references)  # (n, 6): TP, FP, FN, lateral right, lateral, false

    def aggregate(s: np.ndarray) -> np.ndarray:
        tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
        return {"finding_precision": lambda: _ratio(tp, tp + fp), "finding_recall": lambda: _ratio(tp, tp + fn),
                "finding_f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
                "laterality_accuracy": lambda: _ratio(s[..., 3], s[..., 4])}[name]()

    return ItemStatistics(cache[key], aggregate, "corpus")


def _bleu(name, predictions, references, cache) -> ItemStatistics:
    from harness.metrics.coco_java import ptb_tokenize
    from harness.metrics.coco_ngram import bleu_from_stats, bleu_stats, ngram_counts

    key = ("bleu", id(predictions))
    if key not in cache:
        n = len(predictions)
        tokens = ptb_tokenize([str(p) for p in predictions] + [str(r) for r in references])
        cache[key] = np.array([bleu_stats(ngram_counts(h), ngram_counts(r)) for h, r in zip(tokens[:n], tokens[n:])],
                              dtype=np.float64).reshape(n, 10)
    if name == "bleu":
        return ItemStatistics(cache[key], lambda s: bleu_from_stats(s).mean(axis=-1), "corpus")
    k = int(name[-1]) - 1
    return ItemStatistics(cache[key], lambda s: bleu_from_stats(s)[..., k], "corpus")


def check(name: str, stats: ItemStatistics, metric_value: float, side: str) -> None:
    """The aggregate on the full set must be the metric's own value: the gate tests what eval reports."""
    value = stats.value()
    if np.isnan(value) and np.isnan(metric_value):
        return
    if not np.isclose(value, metric_value, rtol=1e-6, atol=1e-9):
        raise HarnessError(f"metric '{name}': the gate's statistic gives {value:.6g} on the {side} but the metric "
                           f"gives {metric_value:.6g}; harness.regress.paired no longer follows its definition")


def paired_bootstrap(base: ItemStatistics, cand: ItemStatistics, *, seed: int = 0, n_boot: int = 10000,
                     ci_level: float = 0.95, clusters: Sequence[object] | None = None) -> PairedResult:
    """Resample items with replacement (same draws for both sides) and recompute both metrics each time.

    ``clusters`` (one key per item) makes the resampled unit a cluster: items asked about one image (a probe
    set asks several questions per image) are drawn together, so their correlation widens the interval
    instead of passing for independent evidence. Statistics are sums, so a cluster's are its items' summed.
    """
    from harness.metrics.bootstrap import resample_counts

    n = base.stats.shape[0]
    if cand.stats.shape[0] != n:
        raise ValueError(f"paired statistics differ in length: {n} vs {cand.stats.shape[0]}")
    b_value, c_value = base.value(), cand.value()
    delta = c_value - b_value
    if n == 0:
        nan = float("nan")
        return PairedResult(b_value, c_value, nan, nan, nan, 1.0, nan, nan, n_boot)
    b_flat, c_flat = base.stats.reshape(n, -1), cand.stats.reshape(n, -1)
    if clusters is not None:
        _, index = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
        b_flat, c_flat = _sum_by(index, b_flat), _sum_by(index, c_flat)
        n = b_flat.shape[0]
    shape = base.stats.shape[1:]
    b_boot, c_boot = [], []
    for counts in resample_counts(n, seed=seed, n_boot=n_boot):
        b_boot.append(base.aggregate((counts @ b_flat).reshape(-1, *shape)))
        c_boot.append(cand.aggregate((counts @ c_flat).reshape(-1, *shape)))
    b_all, c_all = np.concatenate(b_boot), np.concatenate(c_boot)
    diffs = c_all - b_all
    diffs = diffs[~np.isnan(diffs)]  # a macro value is undefined on a resample without any positive label
    if diffs.size == 0:
        return PairedResult(b_value, c_value, delta, float("nan"), float("nan"), 1.0, float("nan"), float("nan"), 0)
    tail = (1.0 - ci_level) / 2.0
    low, high = np.percentile(diffs, [100 * tail, 100 * (1 - tail)])
    # The percentile interval inverted: p < 1 - ci_level when (up to the +1 smoothing) 0 lies outside it.
    below, above = float((diffs <= 0).sum()), float((diffs >= 0).sum())
    p = min(1.0, 2.0 * (1.0 + min(below, above)) / (diffs.size + 1.0))
    return PairedResult(b_value, c_value, delta, float(low), float(high), p, float(diffs.std()),
                        float(np.nanstd(b_all)), int(diffs.size))



def _sum_by(index: np.ndarray, flat: np.ndarray) -> np.ndarray:
    out = np.zeros((int(index.max()) + 1, flat.shape[1]))
    np.add.at(out, index, flat)
    return out
