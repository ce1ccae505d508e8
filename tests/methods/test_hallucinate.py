"""The rule-based hallucination injector: changed, plausible, deterministic per seed."""

from __future__ import annotations

import pytest

from harness.hallucinate import CATEGORIES, hallucinate, hallucinate_with_edits


@pytest.mark.parametrize(("answer", "expected"), [("yes", "no"), ("No", "Yes"), ("yes.", "no.")])
def test_yes_no_answers_flip(answer, expected):
    assert hallucinate(answer, seed=0) == expected
    assert hallucinate(answer, seed=7) == expected


@pytest.mark.parametrize("answer", [
    "left lung",
    "There is no pneumothorax. The heart size is normal.",
    "axial",
    "CT",
    "2",
    "circumscribed lesion",
    "The cardiomediastinal silhouette is within normal limits. No focal consolidation.",
    "lorem ipsum dolor sit amet consectetur",
    "",
])
def test_answers_change_and_repeat_per_seed(answer):
    outputs = [hallucinate(answer, seed=s) for s in range(6)]
    assert all(o.strip() and o.strip().lower() != answer.lower() for o in outputs)
    assert outputs == [hallucinate(answer, seed=s) for s in range(6)]


def test_laterality_swap_keeps_the_rest_of_the_answer():
    outputs = {hallucinate("left lower lobe", seed=s) for s in range(30)}
    assert "right lower lobe" in outputs
    assert "left upper lobe" in outputs


def test_abbreviations_keep_their_spelling():
    outputs = {hallucinate("CT", seed=s) for s in range(30)}
    assert outputs <= {"MRI", "X-ray", "Ultrasound"}
    assert len(outputs) > 1


def test_seeds_give_different_hallucinations_of_a_report():
    report = "The heart is not enlarged. There is no pleural effusion in the left lung."
    assert len({hallucinate(report, seed=s) for s in range(20)}) > 3


def test_edits_are_typed_and_match_the_text_only_wrapper():
    report = "There is a small right pleural effusion in the upper lobe on CT. No pneumothorax."
    seen = set()
    for seed in range(40):
        text, edits = hallucinate_with_edits(report, seed=seed, question="Findings?")
        assert text == hallucinate(report, seed=seed, question="Findings?") and text != report
        assert edits and all(e.category in CATEGORIES for e in edits)
        seen.update(e.category for e in edits)
    assert {"negation", "laterality", "location", "modality", "severity"} <= seen
    assert hallucinate_with_edits("yes", seed=1)[1][0].category == "answer"
    assert hallucinate_with_edits("lorem ipsum dolor sit amet", seed=1)[1][0].category == "append"


def test_counts_and_measurements_change_plausibly():
    assert {hallucinate("2", seed=s) for s in range(20)} == {"1", "3", "4"}
    assert {hallucinate("two", seed=s) for s in range(20)} == {"one", "three", "four"}
    assert {hallucinate("There are 3 nodules.", seed=s) for s in range(20)} == {
        "There are 2 nodules.", "There are 4 nodules.", "There are 5 nodules."}
    # inside a sentence a count stays plural, and list numbers are not counts
    assert all(not h.startswith("One") for h in (hallucinate("Two lesions are seen.", seed=s) for s in range(20)))
    report = "1. No effusion.\n2. A 1.5 cm nodule."
    outputs = [hallucinate_with_edits(report, seed=s) for s in range(30)]
    assert all(text.startswith("1. ") and "\n2. " in text for text, _ in outputs)
    counts = {text for text, edits in outputs if edits[0].category == "count"}
    assert counts and counts <= {"1. No effusion.\n2. A 0.8 cm nodule.", "1. No effusion.\n2. A 2.2 cm nodule.",
                                 "1. No effusion.\n2. A 3.0 cm nodule."}
    assert hallucinate_with_edits("2", seed=0)[1][0].category == "count"
