"""Textual dispreference with judges: pick a conflicting sample, else rewrite, else fall back to rules."""

from __future__ import annotations

from mmedpo.judges import parse_choice, parse_hallucination, parse_score
from mmedpo.text import judge_dispreference


def test_judge_picks_the_conflicting_sample(scripted_judge):
    judge = scripted_judge(["CHOICE: 2"])
    made = judge_dispreference(judge, "Where is the nodule?", "left upper lung",
                               ["left upper lung", "Left upper lung.", "right lower lung", "left lower lung",
                                "right lower lung"], seed=0)
    assert made.rejected == "left lower lung" and made.how == "judge-pick"
    # samples equal to the ground truth (up to case and punctuation) and duplicates are not candidates
    assert "1. right lower lung\n2. left lower lung\n" in judge.prompts[0] and "3." not in judge.prompts[0]


def test_no_conflict_leads_to_a_rewrite(scripted_judge):
    judge = scripted_judge(["CHOICE: none", "HALLUCINATION: right lower lung"])
    made = judge_dispreference(judge, "Where?", "left upper lung", ["upper left lung"], seed=0)
    assert made.rejected == "right lower lung" and made.how == "judge-rewrite"


def test_all_samples_equal_to_the_truth_skip_the_pick(scripted_judge):
    judge = scripted_judge(["HALLUCINATION: yes"])
    made = judge_dispreference(judge, "Is there a mass?", "no", ["no", "No."], seed=0)
    assert made.how == "judge-rewrite" and len(judge.prompts) == 1


def test_malformed_judge_falls_back_to_rules(scripted_judge):
    judge = scripted_judge(["??", "CHOICE: 9", "blah", "HALLUCINATION: left upper lung"])
    made = judge_dispreference(judge, "Where?", "left upper lung", ["right lung"], seed=0, retries=1)
    assert made.how == "rules-fallback" and made.rejected != "left upper lung" and made.edits


def test_parsers():
    assert parse_choice("CHOICE: 3", 3) == 2 and parse_choice("choice=none", 3) == "none"
    assert parse_choice("CHOICE: 4", 3) is None and parse_choice("the second", 3) is None
    assert parse_hallucination('HALLUCINATION: "No."', "no") is None
    assert parse_hallucination("Hallucination: yes", "no") == "yes"
    assert parse_score("SCORE: 0.7") == 0.7 and parse_score("score: 7/10") == 0.7
    assert parse_score("SCORE: 70%") == 0.7 and parse_score("SCORE: 8") == 0.8
    assert parse_score("SCORE: -1") is None and parse_score("AGREE") is None
    assert parse_score("Agree.", allow_agree=True) == "agree"
