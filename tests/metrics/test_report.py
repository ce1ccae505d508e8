"""Report metrics: hand-computed n-gram scores, and equality with direct pycocoevalcap calls."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest

from harness.metrics import compute_metrics
from harness.metrics.coco_java import MeteorJVM, meteor_threads, ptb_tokenize
from harness.metrics.coco_ngram import (
    NgramPairs,
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


def _plain_ngram_metrics(hyps, refs):
    hyp_counts, ref_counts = [ngram_counts(t) for t in hyps], [ngram_counts(t) for t in refs]
    stats = np.array([bleu_stats(h, r) for h, r in zip(hyp_counts, ref_counts)], dtype=np.float64)
    rouge = [rouge_l(h, r) for h, r in zip(hyps, refs)]
    return stats, rouge, cider_scores([c for _, c in hyp_counts], [c for _, c in ref_counts])


def test_shared_ngram_pass_is_bit_identical_to_the_plain_functions():
    """NgramPairs dedupes texts and pairs and interns n-grams; every value must stay exactly what the plain
    per-pair functions give, including repeats, empty texts, repeated words and length ties."""
    texts = ["the heart is normal", "the heart is normal in size", "", "no effusion", "effusion no",
             "a a a a b", "a a b", "heart heart heart", "the heart size is normal"]
    rng = random.Random(1)
    hyps = [rng.choice(texts) for _ in range(80)]
    refs = [rng.choice(texts) for _ in range(80)]
    pairs = NgramPairs(hyps, refs)
    assert len(pairs.texts) == len(set(hyps + refs)) and len(pairs.pairs) == len(set(zip(hyps, refs))) < 80
    stats, rouge, cider = _plain_ngram_metrics(hyps, refs)
    assert np.array_equal(pairs.bleu_stats(), stats)
    assert pairs.rouge_l() == rouge
    assert pairs.cider() == cider
    assert NgramPairs([], []).cider() == [] and NgramPairs([], []).bleu_stats().shape == (0, 10)


def test_shared_ngram_pass_equals_pycocoevalcap_scorers(iu_pairs):
    """BLEU-1..4, ROUGE-L and CIDEr-D of the shared pass against pycocoevalcap's own Python scorers, on
    IU-Xray reports (lower-cased, split on spaces; the scorers take any tokens), to 1e-12 per report."""
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    predictions, references = iu_pairs
    hyps = [" ".join(p.lower().split()) for p in predictions[:100]] * 2
    refs = [" ".join(r.lower().split()) for r in references[:100]] * 2
    gts, res = {i: [r] for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)}
    pairs = NgramPairs(hyps, refs)
    corpus, per_sample = bleu_scores(pairs.bleu_stats())
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    assert np.abs(np.array(corpus) - bleu).max() <= 1e-12
    assert np.abs(per_sample.T - np.array(bleu_per)).max() <= 1e-12
    for ours, (value, per) in ((pairs.rouge_l(), Rouge().compute_score(gts, res)),
                               (pairs.cider(), Cider().compute_score(gts, res))):
        assert abs(np.mean(ours) - value) <= 1e-12
        assert np.abs(np.array(ours) - per).max() <= 1e-12


def test_meteor_threads_setting(monkeypatch):
    from harness.core.errors import HarnessError

    monkeypatch.setenv("HARNESS_METEOR_THREADS", "3")
    assert meteor_threads() == 3 and MeteorJVM().threads == 3
    monkeypatch.delenv("HARNESS_METEOR_THREADS")
    assert meteor_threads() >= 1
    monkeypatch.setenv("HARNESS_METEOR_THREADS", "two")
    with pytest.raises(HarnessError, match="HARNESS_METEOR_THREADS='two'"):
        meteor_threads()


def test_meteor_without_javac_runs_the_jar_as_pycocoevalcap(java, monkeypatch, tmp_path):
    from harness.metrics import coco_java

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))  # nothing compiled yet
    monkeypatch.setattr(coco_java, "_javac", lambda java: None)
    for threads in (1, 4):
        assert MeteorJVM(threads=threads).command()[1:4] == ["-jar", "-Xmx2G", "meteor-1.5.jar"]


def _driver_or_skip():
    from harness.metrics import coco_java

    if coco_java._javac(coco_java.java_path()) is None:
        pytest.skip("javac not found: METEOR runs the jar's own -stdio mode, there is no driver to check")
    return coco_java


def test_the_driver_is_found_from_the_jars_folder_under_a_relative_harness_home(java, monkeypatch, tmp_path):
    """The JVM runs in the jar's folder: a relative HARNESS_HOME (a CI workspace) must still give it the
    driver's absolute folder, or METEOR dies at start."""
    import os

    coco_java = _driver_or_skip()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_HOME", "relative-home")
    monkeypatch.setattr(coco_java, "_paraphrase_index", lambda java, driver: None)  # not needed to check the path
    command = MeteorJVM(threads=2).command()
    classpath = command[command.index("-cp") + 1].split(os.pathsep)
    assert classpath[0] == "meteor-1.5.jar" and os.path.isabs(classpath[1])
    assert (tmp_path / "relative-home" / "java").is_dir()
    # one thread runs the driver too (prepared texts, the paraphrase index), on one scoring thread
    one = MeteorJVM(threads=1).command()
    assert one[one.index(coco_java._DRIVER_CLASS) + 1:][:3] == ["score", "1", "-"]


def test_quick_compiler_only_for_calls_up_to_the_threshold(java, monkeypatch, tmp_path):
    coco_java = _driver_or_skip()
    monkeypatch.setattr(coco_java, "_paraphrase_index", lambda java, driver: str(tmp_path / "table.idx"))
    quick = "-XX:TieredStopAtLevel=1"
    assert quick in MeteorJVM(segments=coco_java.C1_MAX_SEGMENTS).command()
    assert quick not in MeteorJVM(segments=coco_java.C1_MAX_SEGMENTS + 1).command()
    assert quick not in MeteorJVM().command()  # size unknown
    monkeypatch.setattr(coco_java, "_paraphrase_index", lambda java, driver: None)
    assert quick not in MeteorJVM(segments=10).command()  # the whole table loads faster with the optimizing compiler


# PTB-tokenized IU-Xray pairs whose METEOR statistics need paraphrases of tokens that only METEOR's normalizer
# makes ("ill-defined", "mid-thoracic", "and/or" are split there): a table filtered on the tokens as sent
# loses paraphrase matches in all four (found on the 10k-pair benchmark).
NORMALIZED_PAIRS = [
    ("severe emphysematous disease is again noted multifocal areas of scarring are unchanged in appearance no "
     "pneumothorax heart size is normal",
     "the heart size size and pulmonary vascularity appear within normal limits ill-defined opacity is again noted "
     "in the region of the lingula this is increased since the previous study the remainder of the lungs appear "
     "clear mild xxxx deformity is noted in the mid-thoracic spine no pneumothorax or pleural effusion is seen"),
    ("the heart size size and pulmonary vascularity appear within normal limits ill-defined opacity is again noted "
     "in the region of the lingula this is increased since the previous study the remainder of the lungs appear "
     "clear mild xxxx deformity is noted in the mid-thoracic spine no pneumothorax or pleural effusion is seen",
     "stable borderline enlarged cardiac contour calcified mediastinal lymph xxxx prominent right paratracheal "
     "stripe emphysema no active pulmonary disease mild spondylosis"),
    ("right upper lobe airspace disease consistent with pneumonia given patient 's history the lungs are otherwise "
     "clear no pleural effusions or pneumothoraces heart and mediastinum of normal size and contour",
     "heart size and pulmonary vascularity appear within normal limits right picc line is in xxxx the tip has "
     "moved into the left innominate vein there has been interval development of several ill-defined focal "
     "opacities in the left and right mid lung zones no pneumothorax or pleural effusion is seen"),
    ("the cardiomediastinal silhouette and pulmonary vasculature are within normal limits in size there is "
     "ill-defined airspace opacity in the posterior left lower lobe there is focal opacity in the right upper lobe "
     "which suggests scar and/or granulomatous calcification there is no pneumothorax or pleural effusion",
     "low lung volumes are present the heart size and pulmonary vascularity appear within normal limits the lungs "
     "are free of focal airspace disease no pleural effusion or pneumothorax is seen mild degenerative changes are "
     "present in the spine"),
]


@pytest.mark.slow
def test_driver_with_the_paraphrase_index_equals_the_jar_on_normalized_paraphrases(java, monkeypatch):
    """The driver (prepared texts, paraphrase entries filtered to the batch's normalized tokens, several
    threads) prints exactly what the jar's own -stdio mode prints (pycocoevalcap's path, whole table), and
    the pairs do use paraphrase matches (module 4 counts in the statistics), so the filter is exercised."""
    coco_java = _driver_or_skip()
    hyps, refs = [h for h, _ in NORMALIZED_PAIRS], [r for _, r in NORMALIZED_PAIRS]
    with MeteorJVM(threads=2, segments=len(hyps)) as meteor:
        command = meteor.command()
        driver = meteor.score(hyps, refs)
    assert "score" in command and command[command.index("score") + 2].endswith(".idx")
    monkeypatch.setattr(coco_java, "_driver_classpath", lambda java, jar: None)
    with MeteorJVM() as meteor:
        jar = meteor.score(hyps, refs)
    assert driver == jar
    paraphrase_matches = [sum(float(x) for x in line.split()[16:20]) for line in jar[2]]
    assert all(m > 0 for m in paraphrase_matches), paraphrase_matches


def test_paraphrase_index_is_built_once_and_keyed_by_content(java, monkeypatch, tmp_path):
    coco_java = _driver_or_skip()
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    driver = coco_java._driver_classpath(coco_java.java_path(), coco_java._package_dir("meteor") / "meteor-1.5.jar")
    index = coco_java._paraphrase_index(coco_java.java_path(), driver)
    assert index is not None and os.path.basename(index).startswith("meteor-paraphrase-")
    stamp = os.stat(index).st_mtime_ns
    assert coco_java._paraphrase_index(coco_java.java_path(), driver) == index and os.stat(index).st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "java").iterdir() if p.name.startswith(".tmp")] == []  # nothing half written


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
    """compute_metrics with METEOR on 3 threads of the driver (when javac is there), whatever the CPU count."""
    predictions, references = iu_pairs
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_METEOR_THREADS", "3")
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
    assert abs(result.value - value) <= 1e-12
    if per_sample is not None:
        assert np.abs(np.asarray(result.per_sample) - np.asarray(per_sample, dtype=float)).max() <= 1e-12
    assert result.ci_low <= result.value <= result.ci_high


@pytest.mark.slow
def test_meteor_driver_was_used(iu_scores, coco_reference):
    """The METEOR values above came from the driver (whose output must equal the jar's -stdio output, which
    pycocoevalcap's Meteor() reads): when javac exists, the driver is compiled and chosen."""
    coco_java = _driver_or_skip()
    command = MeteorJVM(threads=3).command()
    assert command[command.index(coco_java._DRIVER_CLASS) + 1:][:2] == ["score", "3"]
    assert iu_scores["meteor"].per_sample == [float(x) for x in coco_reference["meteor"][1]]


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
