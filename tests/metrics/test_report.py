"""Report metrics: hand-computed n-gram scores, and equality with direct pycocoevalcap calls."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from harness.metrics import compute_metrics
from harness.metrics.coco_java import MeteorJVM, ptb_tokenize
from harness.metrics.coco_ngram import (
    bleu_scores,
    bleu_stats,
    cider_scores,
    lcs_length,
    ngram_counts,
    rouge_l,
)
from harness.metrics.report import REPORT_METRICS, meteor_from_stats, meteor_segment_stats


def _bleu(hyps, refs):
    stats = np.array([bleu_stats(ngram_counts(h), ngram_counts(r)) for h, r in zip(hyps, refs)], dtype=float)
    return bleu_scores(stats)


def test_bleu_by_hand():
    corpus, per_sample = _bleu(["the heart is big"], ["the heart is enlarged"])
    # clipped precisions 3/4, 2/3, 1/2, 0/1 (0 smoothed to 1e-15 as in pycocoevalcap); equal lengths: BP 1
    assert corpus[0] == pytest.approx(0.75, rel=1e-9)
    assert corpus[1] == pytest.approx(math.sqrt(0.75 * 2 / 3), rel=1e-9)
    assert corpus[2] == pytest.approx((0.75 * 2 / 3 * 0.5) ** (1 / 3), rel=1e-9)
    assert corpus[3] == pytest.approx((0.75 * 2 / 3 * 0.5 * 1e-15) ** 0.25, rel=1e-6)
    assert per_sample[0, 0] == pytest.approx(0.75, rel=1e-9)


def test_bleu_brevity_penalty_by_hand():
    corpus, _ = _bleu(["the heart"], ["the heart is normal"])
    assert corpus[0] == pytest.approx(math.exp(1 - 4 / 2), rel=1e-9)


def test_rouge_l_by_hand():
    assert rouge_l("the heart is big", "the heart is enlarged") == pytest.approx(0.75)
    # LCS 3 ("heart is normal"): P = 1, R = 3/5, F = (1 + 1.2^2) P R / (R + 1.2^2 P)
    assert rouge_l("heart is normal", "the heart size is normal") == pytest.approx(2.44 * 0.6 / (0.6 + 1.44))
    assert rouge_l("", "the heart") == 0.0


def test_bit_parallel_lcs_equals_dynamic_programming():
    def dp(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        return table[-1][-1]

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        assert lcs_length(a, b) == dp(a, b)


def test_cider_by_hand():
    # Two references with disjoint words: every n-gram has df 1 (or 0), so idf = log 2 throughout.
    refs = [ngram_counts(t)[1] for t in ("a b c d", "e f g h")]
    hyps = [ngram_counts(t)[1] for t in ("a b c d", "e f g x")]
    scores = cider_scores(hyps, refs)
    assert scores[0] == pytest.approx(10.0)
    # cosine per order: 3/4, 2/3, 1/2, 0; equal bigram counts so no length penalty
    assert scores[1] == pytest.approx(10 * (3 / 4 + 2 / 3 + 1 / 2 + 0) / 4)


@pytest.fixture(scope="session")
def meteor_run(iu_pairs, java):
    """One JVM: the hand example first, then 150 tokenized IU-Xray pairs."""
    predictions, references = iu_pairs
    tokens = ptb_tokenize(predictions[:150] + references[:150])
    with MeteorJVM() as meteor:
        hand = meteor.score(["the heart size is normal"], ["the heart is normal"])
        iu = meteor.score(tokens[:150], tokens[150:])
    return hand, iu


def test_meteor_jar_by_hand(meteor_run):
    value, per_sample, _ = meteor_run[0]
    # All 4 reference words match ("the", "is" function words; delta 0.75): P = 2 / 2.75, R = 1,
    # Fmean = P R / (0.85 P + 0.15 R); 2 chunks over 4 matches: penalty 0.6 (2/4)^0.2.
    p, r = 2 / 2.75, 1.0
    expected = p * r / (0.85 * p + 0.15 * r) * (1 - 0.6 * 0.5**0.2)
    assert per_sample[0] == pytest.approx(expected, abs=1e-6)
    assert value == pytest.approx(expected, abs=1e-6)


def test_ptb_tokenize_keeps_alignment_for_empty_and_punctuation_only_texts(java):
    assert ptb_tokenize(["The heart, is normal.", "", "...", "No effusion!"]) == [
        "the heart is normal", "", "", "no effusion"
    ]


@pytest.fixture(scope="session")
def iu_scores(iu_pairs, java):
    predictions, references = iu_pairs
    return compute_metrics(REPORT_METRICS, predictions, references, seed=0, n_boot=200)


@pytest.fixture(scope="session")
def coco_reference(iu_pairs, java):
    """Direct pycocoevalcap calls, as its own eval script makes them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    predictions, references = iu_pairs
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r}] for i, r in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{k + 1}": (bleu[k], bleu_per[k]) for k in range(4)}
    out["bleu"] = (float(np.mean(bleu)), None)
    out["rouge_l"] = Rouge().compute_score(gts, res)
    out["meteor"] = Meteor().compute_score(gts, res)
    out["cider"] = Cider().compute_score(gts, res)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", REPORT_METRICS)
def test_equals_pycocoevalcap_on_iu_xray_test(name, iu_scores, coco_reference):
    value, per_sample = coco_reference[name]
    result = iu_scores[name]
    assert result.n == 590
    assert result.value == pytest.approx(value, abs=1e-6)
    if per_sample is not None:
        np.testing.assert_allclose(result.per_sample, per_sample, atol=1e-6)
    assert result.ci_low <= result.value <= result.ci_high


@pytest.mark.slow
def test_meteor_corpus_formula_reproduces_the_jar(meteor_run):
    """The Python METEOR used for bootstrap resamples equals the jar per segment and for the corpus."""
    value, per_sample, lines = meteor_run[1]
    stats = meteor_segment_stats(lines)
    raw = np.array([[float(x) for x in line.split()] for line in lines])
    np.testing.assert_allclose(meteor_from_stats(raw), per_sample, atol=1e-9)
    assert meteor_from_stats(stats.sum(axis=0)) == pytest.approx(value, abs=1e-9)


def test_empty_input_gives_nan_without_starting_java():
    result = compute_metrics(["bleu", "meteor"], [], [])
    assert result["bleu"].n == 0 and math.isnan(result["meteor"].value)


def test_compute_metrics_uses_one_tokenizer_run_and_one_meteor_jvm(java, monkeypatch):
    from harness.metrics import coco_java, report

    calls = {"tokenize": 0, "jvm": 0}
    real_tokenize, real_start = report.ptb_tokenize, coco_java.MeteorJVM.start

    def counting_tokenize(texts):
        calls["tokenize"] += 1
        return real_tokenize(texts)

    def counting_start(self):
        calls["jvm"] += 1
        return real_start(self)

    monkeypatch.setattr(report, "ptb_tokenize", counting_tokenize)
    monkeypatch.setattr(coco_java.MeteorJVM, "start", counting_start)
    preds = ["the heart is normal.", "no effusion", "the heart is normal."] * 4
    refs = ["heart size is normal.", "small effusion", "heart size is normal."] * 4
    results = compute_metrics(REPORT_METRICS, preds, refs, n_boot=20)
    assert calls == {"tokenize": 1, "jvm": 1}
    assert set(results) == set(REPORT_METRICS)
    # repeated pairs are aligned once but still count as samples
    assert results["meteor"].n == 12 and results["meteor"].per_sample[0] == results["meteor"].per_sample[2]


def test_missing_java_is_a_one_line_error(monkeypatch):
    from harness.core.errors import HarnessError
    from harness.metrics import coco_java

    monkeypatch.setattr(coco_java.shutil, "which", lambda name: None)
    with pytest.raises(HarnessError, match="Java was not found"):
        compute_metrics(["bleu"], ["a"], ["a"])
