"""Report-generation metrics (BLEU-1..4, their mean, ROUGE-L, METEOR, CIDEr), pycocoevalcap-exact.

The pipeline is the coco-caption one: PTB-tokenize (lowercase, punctuation tokens removed), then score
each prediction against its one reference. :func:`score_reports` shares all work across the metrics
asked for: the METEOR JVM starts first (start-up and its indexes) while ONE tokenizer run handles
predictions and references together; METEOR then scores in its own process (``harness.metrics.coco_java``)
while BLEU, ROUGE-L and CIDEr are computed in Python from n-gram counts built once per text.

Confidence intervals (seeded percentile bootstrap over reports, see ``harness.stats.intervals``):

- BLEU-n and METEOR are corpus-level: each resample sums the per-report sufficient statistics (BLEU:
  lengths, clipped matches, guesses; METEOR: the 23 statistics its jar reports per segment) and applies
  the corpus formula again, so the interval is for the corpus value itself. ``bleu`` resamples the mean
  of BLEU-1..4 the same way.
- ROUGE-L is the mean of per-report scores: the mean is resampled.
- CIDEr's per-report scores depend on document frequencies over all references; the resamples keep the
  full-set frequencies fixed and resample the per-report scores (recomputing the idf for every resample
  would add a corpus pass per resample and measures a different set's idf).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

import numpy as np

from harness.metrics.base import ItemForm, Metric, MetricResult, mean_result
from harness.metrics.coco_java import MeteorJVM, ptb_tokenize
from harness.metrics.coco_ngram import (
    NgramPairs,
    bleu_from_stats,
    bleu_scores,
    bleu_stats,
    ngram_counts,
)
from harness.metrics.registry import metric
from harness.stats.intervals import bootstrap_interval

log = logging.getLogger(__name__)

BLEU_NAMES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4")
REPORT_METRICS = (*BLEU_NAMES, "bleu", "rouge_l", "meteor", "cider")

# METEOR 1.5 parameters for English, default task (alpha, beta, gamma, delta; module weights for
# exact, stem, synonym, paraphrase). Used only to recompute the corpus value on bootstrap resamples;
# tests check that they reproduce the jar's per-segment and corpus scores.
_METEOR_ALPHA, _METEOR_BETA, _METEOR_GAMMA, _METEOR_DELTA = 0.85, 0.2, 0.6, 0.75
_METEOR_WEIGHTS = np.array([1.0, 0.6, 0.8, 0.6])


def meteor_from_stats(stats: np.ndarray) -> np.ndarray:
    """METEOR from summed segment statistics ``(..., 23)`` (as the jar's EVAL aggregates them).

    Layout: test len, ref len, test function words, ref function words, 4 stages x (test content,
    ref content, test function, ref function) matches, chunks, test word matches, ref word matches.
    Segments matched perfectly in one chunk must have their chunk zeroed before summing (the jar does).
    """
    d = _METEOR_DELTA
    stages = stats[..., 4:20].reshape(*stats.shape[:-1], 4, 4)
    test_matches = (_METEOR_WEIGHTS * (d * stages[..., 0] + (1 - d) * stages[..., 2])).sum(-1)
    ref_matches = (_METEOR_WEIGHTS * (d * stages[..., 1] + (1 - d) * stages[..., 3])).sum(-1)
    test_len = d * (stats[..., 0] - stats[..., 2]) + (1 - d) * stats[..., 2]
    ref_len = d * (stats[..., 1] - stats[..., 3]) + (1 - d) * stats[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = test_matches / test_len
        recall = ref_matches / ref_len
        fmean = precision * recall / (_METEOR_ALPHA * precision + (1 - _METEOR_ALPHA) * recall)
        matches = (stats[..., 21] + stats[..., 22]) / 2
        perfect = (stats[..., 21] == stats[..., 0]) & (stats[..., 22] == stats[..., 1]) & (stats[..., 20] == 1)
        penalty = np.where(perfect, 0.0, _METEOR_GAMMA * (stats[..., 20] / matches) ** _METEOR_BETA)
        score = fmean * (1 - penalty)
    return np.where((precision > 0) & (recall > 0), score, 0.0)


def meteor_segment_stats(lines: Sequence[str]) -> np.ndarray:
    stats = np.array([[float(x) for x in line.split()] for line in lines], dtype=np.float64)
    perfect = (stats[:, 21] == stats[:, 0]) & (stats[:, 22] == stats[:, 1]) & (stats[:, 20] == 1)
    stats[perfect, 20] = 0.0
    return stats


def _result(name: str, value: float, per_sample: np.ndarray, ci: tuple[float, float]) -> MetricResult:
    return MetricResult(
        name=name, value=float(value), ci_low=ci[0], ci_high=ci[1], n=len(per_sample),
        higher_is_better=True, per_sample=[float(x) for x in per_sample],
    )


def score_reports(
    names: Iterable[str],
    predictions: Sequence[object],
    references: Sequence[object],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, MetricResult]:
    """Score the report metrics in ``names`` (any of :data:`REPORT_METRICS`) sharing all work."""
    wanted = [n for n in dict.fromkeys(names)]
    unknown = [n for n in wanted if n not in REPORT_METRICS]
    if unknown:
        raise ValueError(f"not report metrics: {unknown}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    n = len(predictions)
    if n == 0:
        nan = float("nan")
        return {k: MetricResult(k, nan, nan, nan, 0, True, []) for k in wanted}

    started = time.perf_counter()
    meteor = MeteorJVM(segments=n).start() if "meteor" in wanted else None
    try:
        tokens = ptb_tokenize([str(p) for p in predictions] + [str(r) for r in references])
        hyps, refs = tokens[:n], tokens[n:]
        meteor_out: dict = {}
        meteor_thread = None
        if meteor is not None:
            def run_meteor() -> None:
                try:
                    meteor_out["value"] = meteor.score(hyps, refs)
                except BaseException as exc:  # re-raised in the caller's thread
                    meteor_out["error"] = exc

            meteor_thread = threading.Thread(target=run_meteor, daemon=True)
            meteor_thread.start()
        results = _score_ngram_metrics(wanted, hyps, refs, seed=seed, n_boot=n_boot)
        if meteor_thread is not None:
            meteor_thread.join()
            if "error" in meteor_out:
                raise meteor_out["error"]
            value, per_sample, lines = meteor_out["value"]
            stats = meteor_segment_stats(lines)
            ci = bootstrap_interval(stats, meteor_from_stats, seed=seed, n_boot=n_boot)
            results["meteor"] = _result("meteor", value, np.asarray(per_sample), ci)
    finally:
        if meteor is not None:
            meteor.close()
    log.debug("scored %s on %d reports in %.2fs", ",".join(wanted), n, time.perf_counter() - started)
    return {k: results[k] for k in wanted}


def _score_ngram_metrics(
    wanted: list[str], hyps: list[str], refs: list[str], *, seed: int, n_boot: int
) -> dict[str, MetricResult]:
    results: dict[str, MetricResult] = {}
    pairs = NgramPairs(hyps, refs)
    if any(k in wanted for k in (*BLEU_NAMES, "bleu")):
        stats = pairs.bleu_stats()
        corpus, per_sample = bleu_scores(stats)
        for k, name in enumerate(BLEU_NAMES):
            if name in wanted:
                ci = bootstrap_interval(stats, lambda s, k=k: bleu_from_stats(s)[:, k], seed=seed, n_boot=n_boot)
                results[name] = _result(name, corpus[k], per_sample[:, k], ci)
        if "bleu" in wanted:
            ci = bootstrap_interval(stats, lambda s: bleu_from_stats(s).mean(axis=1), seed=seed, n_boot=n_boot)
            results["bleu"] = _result("bleu", float(np.mean(corpus)), per_sample.mean(axis=1), ci)
    if "rouge_l" in wanted:
        results["rouge_l"] = mean_result("rouge_l", pairs.rouge_l(), seed=seed, n_boot=n_boot)
    if "cider" in wanted:
        results["cider"] = mean_result("cider", pairs.cider(), seed=seed, n_boot=n_boot)
    return results


def bleu_item_counts(predictions: Sequence[object], references: Sequence[object]) -> np.ndarray:
    """``(n, 10)`` per-report BLEU statistics (hypothesis and reference lengths, matched and total n-grams for
    n = 1..4), PTB-tokenized as the corpus score is: their sum gives the corpus BLEU of any set of reports."""
    n = len(predictions)
    tokens = ptb_tokenize([str(p) for p in predictions] + [str(r) for r in references])
    return np.array([bleu_stats(ngram_counts(h), ngram_counts(r)) for h, r in zip(tokens[:n], tokens[n:])],
                    dtype=np.float64).reshape(n, 10)


def _bleu_form(name: str) -> ItemForm:
    """Corpus BLEU-n (or their mean, ``bleu``) recomputed from summed per-report statistics."""
    if name == "bleu":
        return ItemForm("bleu", bleu_item_counts, lambda s: bleu_from_stats(s).mean(axis=-1))
    k = int(name[-1]) - 1
    return ItemForm("bleu", bleu_item_counts, lambda s: bleu_from_stats(s)[..., k])


NO_ITEMS = {"meteor": "METEOR's statistics come from a Java scorer per call; use rouge_l, bleu or cider instead"}


@metric
def _report_metric(name: str, description: str) -> Metric:
    def compute(
        predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
    ) -> MetricResult:
        return score_reports([name], predictions, references, seed=seed, n_boot=n_boot)[name]

    # rouge_l and cider are means of per-report scores: no form needed
    items = _bleu_form(name) if name in (*BLEU_NAMES, "bleu") else None
    return Metric(name=name, higher_is_better=True, compute=compute, subset="report", description=description,
                  items=items, no_items=NO_ITEMS.get(name, ""))


bleu_1 = _report_metric("bleu_1", "Corpus BLEU-1 (pycocoevalcap Bleu(4), PTB-tokenized).")
bleu_2 = _report_metric("bleu_2", "Corpus BLEU-2 (pycocoevalcap Bleu(4), PTB-tokenized).")
bleu_3 = _report_metric("bleu_3", "Corpus BLEU-3 (pycocoevalcap Bleu(4), PTB-tokenized).")
bleu_4 = _report_metric("bleu_4", "Corpus BLEU-4 (pycocoevalcap Bleu(4), PTB-tokenized).")
bleu = _report_metric("bleu", "Mean of corpus BLEU-1..4 (the MMedPO paper's 'BLEU').")
rouge_l_metric = _report_metric("rouge_l", "ROUGE-L F (beta 1.2), mean over reports (pycocoevalcap Rouge()).")
meteor_metric = _report_metric("meteor", "METEOR 1.5 corpus score (pycocoevalcap Meteor(), Java).")
cider_metric = _report_metric("cider", "CIDEr-D, mean over reports (pycocoevalcap Cider()).")
