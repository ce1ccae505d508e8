"""Textual dispreference with judges: pick a conflicting sample, else rewrite, else fall back to rules.

The LLM judge is scripted; the ground-truth judge reads real synthetic cases with the project's fact checker.
"""

from __future__ import annotations

from harness.curation.factcheck import contradictions, severity
from harness.curation.judges import parse_choice, parse_score
from mmedpo.judges import parse_hallucination
from mmedpo.text import judge_dispreference, truth_dispreference


def test_judge_picks_the_conflicting_sample(scripted_judge):
    judge = scripted_judge(["CHOICE: 2"])
    made = judge_dispreference(judge, "Where is the nodule?", "left upper lung",
                               ["left upper lung", "Left upper lung.", "right lower lung", "left lower lung",
                                "right lower lung"], seed=0)
    assert made.rejected == "left lower lung" and made.how == "judge-pick" and made.judge == "scripted"
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


# -- the ground-truth judge (offline sample-and-judge) ----------------------------------------------------


def _report_with_lesion(synth_reports):
    _, dataset = synth_reports
    return next(s for s in dataset if s["lesion_kind"] == "pneumothorax")  # one large apical pneumothorax


def test_ground_truth_judge_picks_the_most_severe_contradiction(synth_reports):
    case = _report_with_lesion(synth_reports)
    side = case["lesion_location"].split()[0]
    other = "left" if side == "right" else "right"
    samples = [
        case["answer"],                                               # the truth itself: never a candidate
        f"There is a small {side} apical pneumothorax.",               # a size error
        f"There is a large {other} apical pneumothorax.",              # a laterality error
        "The lungs are clear. There is no pneumothorax.",             # denies the pneumothorax: the worst
        "The lungs are clear. There is no pneumothorax.",
    ]
    made = truth_dispreference(case, case["answer"], samples, seed=0)
    assert made.how == "truth-pick" and made.judge == "ground-truth"
    assert made.rejected == "The lungs are clear. There is no pneumothorax."
    scores = {s: severity(contradictions(s, case)) for s in samples[1:4]}
    assert scores[made.rejected] == max(scores.values()) > scores[samples[1]]
    assert [c.kind for c in made.contradictions] == [c.kind for c in contradictions(made.rejected, case)]
    assert made.to_json()["contradictions"][0]["kind"] == "denied_finding" and made.samples == samples


def test_ground_truth_judge_breaks_ties_by_sample_order(synth_reports):
    case = _report_with_lesion(synth_reports)
    first, second = "There is no pneumothorax.", "No pneumothorax is seen."
    assert severity(contradictions(first, case)) == severity(contradictions(second, case)) > 0
    assert truth_dispreference(case, case["answer"], [first, second], seed=0).rejected == first
    assert truth_dispreference(case, case["answer"], [second, first], seed=0).rejected == second


def test_ground_truth_judge_prefers_one_pointed_error_to_word_salad(synth_reports):
    case = _report_with_lesion(synth_reports)
    salad = "There is no pneumothorax. There is a large right mass. There is a large left effusion. There is a nodule."
    pointed = "The lungs are clear. There is no pneumothorax."
    assert len(contradictions(salad, case)) > len(contradictions(pointed, case))
    assert severity(contradictions(salad, case)) >= severity(contradictions(pointed, case))  # summed, salad first
    made = truth_dispreference(case, case["answer"], [salad, pointed], seed=0)
    assert made.rejected == pointed  # same worst error (the denied pneumothorax), fewer of them


def test_no_contradicting_sample_falls_back_to_the_verified_injector(synth_reports):
    case = _report_with_lesion(synth_reports)
    reordered = " ".join(reversed([f"{s.strip()}." for s in case["answer"].split(".") if s.strip()]))
    samples = [case["answer"], case["answer"].upper(), reordered]  # the truth, shouted, reordered
    made = truth_dispreference(case, case["answer"], samples, seed=3)
    assert made.how == "injector-fallback" and made.judge == "ground-truth"
    assert made.rejected not in samples and contradictions(made.rejected, case)
    assert made.contradictions and made.samples == samples
    again = truth_dispreference(case, case["answer"], samples, seed=3)
    assert again.rejected == made.rejected  # the fallback is seeded


def test_no_verified_hallucination_returns_none(synth_reports, monkeypatch):
    case = _report_with_lesion(synth_reports)
    monkeypatch.setattr("harness.curation.hallucinate.make_hallucination", lambda sample, *, seed: None)
    assert truth_dispreference(case, case["answer"], [case["answer"]], seed=0) is None
