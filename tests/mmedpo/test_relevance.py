"""Clinical relevance: consensus among judges, the offline heuristic, and weight normalization."""

from __future__ import annotations

import statistics

import pytest

from harness.core.errors import HarnessError
from mmedpo.relevance import ConsensusScorer, heuristic_score, normalize, rescale
from mmedpo.rules import inject


def test_consensus_stops_when_every_judge_endorses_the_score(scripted_judge):
    a = scripted_judge(["SCORE: 0.8"], "a")
    b = scripted_judge(["AGREE"], "b")
    c = scripted_judge(["SCORE: 0.8"], "c")  # same score counts as agreement
    result = ConsensusScorer([a, b, c]).score("q", "yes", "no")
    assert result.consensus and result.rounds == 1
    assert result.scores_given == [0.8, 0.8, 0.8] and result.score == pytest.approx(0.8)
    assert "rated it 0.80" in b.prompts[0] and "rated it" not in a.prompts[0]


def test_consensus_takes_the_mean_of_all_scores_given(scripted_judge):
    # a proposes 0.4, b disagrees (0.9), a agrees with 0.9 -> consensus on round 2
    a = scripted_judge(["SCORE: 0.4", "AGREE"], "a")
    b = scripted_judge(["SCORE: 9/10"], "b")
    result = ConsensusScorer([a, b]).score("q", "left", "right")
    assert result.consensus and result.rounds == 2
    assert result.scores_given == [0.4, 0.9, 0.9]
    assert result.score == pytest.approx((0.4 + 0.9 + 0.9) / 3)


def test_no_consensus_stops_after_max_rounds(scripted_judge):
    a = scripted_judge(["SCORE: 0.1"], "a")
    b = scripted_judge(["SCORE: 0.9"], "b")
    result = ConsensusScorer([a, b], max_rounds=3).score("q", "x", "y")
    assert not result.consensus and result.rounds == 3
    assert result.scores_given == [0.1, 0.9] * 3
    assert len(a.prompts) == len(b.prompts) == 3


def test_malformed_replies_are_retried_then_skipped(scripted_judge):
    flaky = scripted_judge(["I think it is bad", "SCORE: 0.7"], "flaky")
    result = ConsensusScorer([flaky], retries=2).score("q", "x", "y")
    assert result.score == pytest.approx(0.7) and len(flaky.prompts) == 2

    broken = scripted_judge(["no idea"], "broken")
    good = scripted_judge(["SCORE: 0.6"], "good")
    result = ConsensusScorer([broken, good], max_rounds=2, retries=1).score("q", "x", "y")
    assert result.scores_given == [0.6, 0.6]  # broken's turns are skipped, good endorses its own score


def test_all_judges_failing_falls_back_to_the_heuristic(scripted_judge):
    judge = scripted_judge([HarnessError("endpoint down")], "down")
    chosen = "There is a nodule in the left lung."
    text, edits = inject(chosen, seed=0)
    result = ConsensusScorer([judge], max_rounds=2, retries=0).score("q", chosen, text, edits=edits)
    assert result.source == "heuristic-fallback"
    assert result.score == heuristic_score(chosen, text, edits) > 0


def _row(answer, question, kind="none", location="none", size="none", answer_type="closed"):
    return {"answer": answer, "answer_type": answer_type, "question": question, "lesion_kind": kind,
            "lesion_location": location, "lesion_size": size}


def test_heuristic_scores_what_the_rejected_text_contradicts_in_the_case():
    denied = heuristic_score("yes", "no", sample=_row("yes", "Is there a pneumothorax?", "pneumothorax",
                                                          "left upper", "large"))
    invented = heuristic_score("no", "yes", sample=_row("no", "Is there a nodule?"))
    assert denied > invented > 0  # missing a large pneumothorax is worse than inventing a nodule
    case = ("nodule", "right upper", "small")
    report = "There is a small nodule in the right upper lung."
    side = heuristic_score(report, report.replace("right", "left"), sample=_row(report, "", *case, "report"))
    size = heuristic_score(report, report.replace("small", "medium"), sample=_row(report, "", *case, "report"))
    assert side > size > 0
    negated = "The lungs are clear. There is no pleural effusion or pneumothorax."
    same = heuristic_score(negated, negated.replace("effusion", "granuloma"),
                           sample=_row(negated, "", answer_type="report"))
    assert same == 0.0  # contradicts nothing: not a hallucination


def test_heuristic_without_a_sample_reads_the_guessed_row_then_the_legacy_rule():
    laterality = heuristic_score("nodule in the left lung", "nodule in the right lung")
    severity = heuristic_score("a small nodule", "a large nodule")
    wording = heuristic_score("the heart is normal in size", "the heart is of normal size")
    assert laterality > severity > wording > 0
    assert heuristic_score("same text", "Same text.") == 0.0


def test_paper_normalization_rescales_to_mean_one_variance_point_one_then_clips():
    scores = [0.45, 0.5, 0.55, 0.5, 0.48, 0.52, 0.9, 0.1]
    rescaled = rescale(scores)
    assert statistics.fmean(rescaled) == pytest.approx(1.0)
    assert statistics.pvariance(rescaled) == pytest.approx(0.1)
    weights = normalize(scores, "paper")
    assert weights == [min(max(w, 0.75), 1.25) for w in rescaled]
    assert weights[-2:] == [1.25, 0.75]


def test_paper_normalization_clips_and_handles_constant_scores():
    weights = normalize([0.0] * 20 + [1.0], "paper")
    assert min(weights) >= 0.75 and max(weights) == 1.25
    assert normalize([0.3, 0.3], "paper") == [1.0, 1.0]


def test_release_and_none_normalizations():
    assert normalize([0.2, 0.9], "release") == [0.2, 0.9]
    assert normalize([0.2, 0.9], "none") == [1.0, 1.0]
    with pytest.raises(HarnessError, match="unknown weight normalization"):
        normalize([0.1], "zscore")
