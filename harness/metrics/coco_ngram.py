"""BLEU-1..4, ROUGE-L and CIDEr over PTB-tokenized text, equal to pycocoevalcap's scorers.

Inputs are already tokenized (tokens joined by single spaces), one reference per hypothesis. Each text's
n-gram counts are built once and shared by BLEU and CIDEr; the arithmetic follows pycocoevalcap exactly:

- BLEU (Papineni et al., 2002) as ``Bleu(4)`` with ``option='closest'``: corpus BLEU-n from summed
  clipped matches / guesses and one brevity penalty from summed lengths; per-sample BLEU-n with the
  same ``tiny``/``small`` smoothing constants (1e-15, 1e-9).
- ROUGE-L (Lin, 2004) as ``Rouge()``: LCS-based F with beta = 1.2 over ``split(" ")`` tokens; the LCS
  length is computed with the bit-parallel algorithm of Allison & Dix (1986) instead of a DP table.
- CIDEr-D as in ``Cider()`` (Vedantam et al., 2015): tf-idf n-gram vectors with document frequencies
  over the references of the scored set, clipped cosine, Gaussian length penalty (sigma = 6) whose
  "length" is pycocoevalcap's bigram count, mean over n = 1..4, times 10.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

N = 4
_TINY = 1e-15
_SMALL = 1e-9
_ROUGE_BETA = 1.2
_CIDER_SIGMA = 6.0


def ngram_counts(text: str, n: int = N) -> tuple[int, Counter]:
    words = text.split()
    counts: Counter = Counter()
    for k in range(1, n + 1):
        counts.update(zip(*(words[i:] for i in range(k))))
    return len(words), counts


def bleu_stats(hyp: tuple[int, Counter], ref: tuple[int, Counter]) -> list[float]:
    """Sufficient statistics of one pair: [testlen, reflen, correct_1..4, guess_1..4]."""
    testlen, hcounts = hyp
    reflen, rcounts = ref
    correct = [0] * N
    for gram, count in hcounts.items():
        matched = rcounts.get(gram)
        if matched:
            correct[len(gram) - 1] += min(count, matched)
    guess = [max(0, testlen - k) for k in range(N)]
    return [testlen, reflen, *correct, *guess]


def bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 from summed statistics; ``stats`` is ``(..., 10)``, returns ``(..., 4)``."""
    testlen, reflen = stats[..., 0], stats[..., 1]
    correct, guess = stats[..., 2:6], stats[..., 6:10]
    cumulative = np.cumprod((correct + _TINY) / (guess + _SMALL), axis=-1)
    bleus = cumulative ** (1.0 / np.arange(1, N + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    with np.errstate(divide="ignore", over="ignore"):
        penalty = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleus * penalty[..., None]


def bleu_scores(stats: np.ndarray) -> tuple[list[float], np.ndarray]:
    """(corpus BLEU-1..4, per-sample BLEU-1..4 as ``(n, 4)``) from per-sample statistics ``(n, 10)``."""
    per_sample = bleu_from_stats(stats)
    corpus = bleu_from_stats(stats.sum(axis=0))
    return [float(v) for v in corpus], per_sample


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (one big-int operation per token of b)."""
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l(hyp: str, ref: str) -> float:
    tokens_h, tokens_r = hyp.split(" "), ref.split(" ")
    lcs = lcs_length(tokens_r, tokens_h)
    precision, recall = lcs / len(tokens_h), lcs / len(tokens_r)
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + _ROUGE_BETA**2) * precision * recall / (recall + _ROUGE_BETA**2 * precision)


def _cider_vector(counts: Counter, weight: dict, default: float) -> tuple[dict, list[float], int]:
    vec: dict = {}
    norms = [0.0] * N
    length = 0
    for gram, tf in counts.items():
        value = tf * weight.get(gram, default)
        vec[gram] = value
        norms[len(gram) - 1] += value * value
        if len(gram) == 2:  # pycocoevalcap's "length" counts bigrams (its n == 1 index)
            length += tf
    return vec, [math.sqrt(x) for x in norms], length


def cider_scores(hyps: Sequence[Counter], refs: Sequence[Counter]) -> list[float]:
    """Per-sample CIDEr-D (the corpus value is their mean); document frequencies over ``refs``."""
    if not refs:
        return []
    df: Counter = Counter()
    for counts in refs:
        df.update(counts.keys())
    log_n = math.log(float(len(refs)))
    # idf weight of an n-gram; unseen n-grams get log(max(1, 0)) = 0, i.e. weight log_n.
    weight = {gram: log_n - math.log(max(1.0, count)) for gram, count in df.items()}
    scale = 2 * _CIDER_SIGMA**2
    scores = []
    for hcounts, rcounts in zip(hyps, refs):
        vh, nh, lh = _cider_vector(hcounts, weight, log_n)
        vr, nr, lr = _cider_vector(rcounts, weight, log_n)
        sims = [0.0] * N
        for gram, value in vh.items():
            ref_value = vr.get(gram)
            if ref_value:
                sims[len(gram) - 1] += min(value, ref_value) * ref_value
        penalty = math.exp(-((lh - lr) ** 2) / scale)
        total = 0.0
        for k in range(N):
            s = sims[k]
            if nh[k] != 0 and nr[k] != 0:
                s /= nh[k] * nr[k]
            total += s * penalty
        scores.append(total / N * 10.0)
    return scores


class NgramPairs:
    """BLEU statistics, ROUGE-L and CIDEr-D for many (hypothesis, reference) pairs, each piece of work done once.

    Same arithmetic, in the same order, as :func:`bleu_stats`, :func:`rouge_l` and :func:`cider_scores` (which
    stay as the plain reference implementation), so the values are bit-identical to theirs. What is shared:

    - every distinct text is split and counted once (generated and reference reports repeat: templates);
    - n-grams are interned to small ints, per order, so the pair loops hash ints instead of string tuples;
    - a text's CIDEr tf-idf vector, norms and length, and its ROUGE-L token bitmasks, are built once;
    - every distinct (hypothesis, reference) pair is scored once and the score copied to its repeats.
    """

    def __init__(self, hyps: Sequence[str], refs: Sequence[str]) -> None:
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
        ids: dict[str, int] = {}
        self.hyp_ids = [ids.setdefault(t, len(ids)) for t in hyps]
        self.ref_ids = [ids.setdefault(t, len(ids)) for t in refs]
        self.texts = list(ids)
        pair_ids: dict[tuple[int, int], int] = {}
        self.pair_of = [pair_ids.setdefault(p, len(pair_ids)) for p in zip(self.hyp_ids, self.ref_ids)]
        self.pairs = list(pair_ids)
        gram_ids: dict[tuple, int] = {}
        self.lengths: list[int] = []
        # per text, per order k (0..3): {gram id: count} in first-appearance order, as ngram_counts builds it
        self.counts: list[list[dict[int, int]]] = []
        for text in self.texts:
            words = text.split()
            self.lengths.append(len(words))
            orders = []
            for k in range(1, N + 1):
                per_order: dict[int, int] = {}
                for gram in zip(*(words[i:] for i in range(k))):
                    gid = gram_ids.get(gram)
                    if gid is None:
                        gid = gram_ids[gram] = len(gram_ids)
                    per_order[gid] = per_order.get(gid, 0) + 1
                orders.append(per_order)
            self.counts.append(orders)

    def expand(self, per_pair: list) -> list:
        """Per-pair values (one per distinct pair) as one value per input pair."""
        return [per_pair[p] for p in self.pair_of]

    def bleu_stats(self) -> np.ndarray:
        """``(n, 10)`` statistics as :func:`bleu_stats` gives them, one row per input pair."""
        rows = []
        for h, r in self.pairs:
            hcounts, rcounts = self.counts[h], self.counts[r]
            correct = []
            for k in range(N):
                rk = rcounts[k]
                matched = 0
                for gid, count in hcounts[k].items():
                    ref_count = rk.get(gid)
                    if ref_count:
                        matched += count if count < ref_count else ref_count
                correct.append(matched)
            testlen = self.lengths[h]
            rows.append([testlen, self.lengths[r], *correct, *(max(0, testlen - k) for k in range(N))])
        stats = np.array(rows, dtype=np.float64).reshape(len(rows), 2 + 2 * N)
        return stats[self.pair_of]

    def rouge_l(self) -> list[float]:
        """ROUGE-L F per input pair, as :func:`rouge_l`."""
        tokens = [t.split(" ") for t in self.texts]
        masks: dict[int, dict[str, int]] = {}

        def masks_of(i: int) -> dict[str, int]:
            found = masks.get(i)
            if found is None:
                found = masks[i] = {}
                for bit, token in enumerate(tokens[i]):
                    found[token] = found.get(token, 0) | (1 << bit)
            return found

        beta2 = _ROUGE_BETA**2
        scores = []
        for h, r in self.pairs:
            tokens_h, tokens_r = tokens[h], tokens[r]
            # lcs_length(tokens_r, tokens_h): bitmasks over the longer sequence (the reference on ties)
            a, b = (r, tokens_h) if len(tokens_r) >= len(tokens_h) else (h, tokens_r)
            length_a = len(tokens[a])
            amask = masks_of(a)
            full = (1 << length_a) - 1
            v = full
            for token in b:
                u = v & amask.get(token, 0)
                v = ((v + u) | (v - u)) & full
            lcs = length_a - v.bit_count()
            precision, recall = lcs / len(tokens_h), lcs / len(tokens_r)
            if precision == 0 or recall == 0:
                scores.append(0.0)
            else:
                scores.append((1 + beta2) * precision * recall / (recall + beta2 * precision))
        return self.expand(scores)

    def cider(self) -> list[float]:
        """CIDEr-D per input pair, as :func:`cider_scores` (document frequencies over all input references)."""
        n_refs = len(self.ref_ids)
        if not n_refs:
            return []
        df: dict[int, int] = {}
        for r, times in Counter(self.ref_ids).items():
            for per_order in self.counts[r]:
                for gid in per_order:
                    df[gid] = df.get(gid, 0) + times
        log_n = math.log(float(n_refs))
        weight = {gid: log_n - math.log(max(1.0, count)) for gid, count in df.items()}
        vectors: dict[int, tuple[list[dict[int, float]], list[float], int]] = {}

        def vector_of(i: int) -> tuple[list[dict[int, float]], list[float], int]:
            found = vectors.get(i)
            if found is None:
                vec, norms = [], []
                for per_order in self.counts[i]:
                    values = {gid: tf * weight.get(gid, log_n) for gid, tf in per_order.items()}
                    square = 0.0
                    for value in values.values():
                        square += value * value
                    vec.append(values)
                    norms.append(math.sqrt(square))
                # pycocoevalcap's "length" counts bigrams (its n == 1 index)
                found = vectors[i] = (vec, norms, sum(self.counts[i][1].values()))
            return found

        scale = 2 * _CIDER_SIGMA**2
        scores = []
        for h, r in self.pairs:
            vh, nh, lh = vector_of(h)
            vr, nr, lr = vector_of(r)
            penalty = math.exp(-((lh - lr) ** 2) / scale)
            total = 0.0
            for k in range(N):
                rk = vr[k]
                s = 0.0
                for gid, value in vh[k].items():
                    ref_value = rk.get(gid)
                    if ref_value:
                        s += (value if value < ref_value else ref_value) * ref_value
                if nh[k] != 0 and nr[k] != 0:
                    s /= nh[k] * nr[k]
                total += s * penalty
            scores.append(total / N * 10.0)
        return self.expand(scores)
