"""MMedPO's offline hallucinations: deterministic, always different, clinically typed, verified with a sample."""

from __future__ import annotations

import pytest

from harness.curation.hallucinate import CATEGORIES, hallucinate_with_edits
from mmedpo.rules import CATEGORY_WEIGHT, inject


@pytest.mark.parametrize("answer", [
    "yes", "No", "no abnormality", "left upper lung", "small", "CT", "brain",
    "The heart size is normal. There is a small right pleural effusion. There is no pneumothorax.",
    "42", "", "The lungs are clear.",
])
def test_inject_always_changes_the_answer_and_is_deterministic(answer):
    for seed in range(5):
        text, edits = inject(answer, seed=seed)
        assert text.strip().lower() != answer.strip().lower()
        assert edits and all(e.category in CATEGORY_WEIGHT for e in edits)
        assert inject(answer, seed=seed) == (text, edits)


def test_closed_answers_flip_with_case_kept():
    assert inject("Yes", seed=3)[0] == "No"
    assert inject("no", seed=3)[0] == "yes"


def test_edits_cover_the_issue_categories():
    texts = ["There is a small right pleural effusion. Mild left upper lobe atelectasis. No pneumothorax.",
             "There is a 12 mm nodule in the right lower lobe. The lungs are otherwise clear."]
    seen = {e.category for t in texts for s in range(60) for e in inject(t, seed=s)[1]}
    assert {"negation", "finding", "laterality", "location", "severity"} <= seen


def test_laterality_swap_reads_naturally():
    outputs = {inject("There is a nodule in the left lung.", seed=s)[0] for s in range(40)}
    assert "There is a nodule in the right lung." in outputs
    assert all("  " not in o for o in outputs)


def test_every_injector_category_has_a_weight():
    assert set(CATEGORY_WEIGHT) == set(CATEGORIES)


def test_inject_is_the_shared_harness_injector():
    report = "The heart size is normal. There is a small right pleural effusion. There is no pneumothorax."
    for seed in range(5):
        assert inject(report, seed=seed) == hallucinate_with_edits(report, seed=seed)


def test_inject_with_the_task_row_contradicts_the_case():
    from harness.curation.factcheck import contradictions

    row = {"answer": "no", "answer_type": "closed", "question": "Is there a pneumothorax?", "lesion_kind": "none",
           "lesion_location": "none", "lesion_size": "none"}
    text, edits = inject("no", seed=0, sample=row)
    assert text == "yes" and contradictions(text, row)[0].kind == "invented_finding"
