"""The rule-based injector makes verified hallucinations: every rejected text contradicts its case."""

from __future__ import annotations

import pytest

from harness.curation.factcheck import contradictions
from harness.curation.hallucinate import CATEGORIES, hallucinate, hallucinate_with_edits, make_hallucination
from harness.findings import synthetic as st
from harness.findings.labeler import positive_findings

NORMAL = {"answer": "The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax.",
          "answer_type": "report", "question": "Describe the findings.", "lesion_kind": "none",
          "lesion_location": "none", "lesion_size": "none"}
LESION = {"answer": "The heart size is normal. There is a small right pleural effusion. There is a large nodule in "
                    "the left upper lung. There is no pneumothorax.",
          "answer_type": "report", "question": "Describe the findings.", "lesion_kind": "effusion,nodule",
          "lesion_location": "right lower,left upper", "lesion_size": "small,large"}


@pytest.mark.parametrize(("answer", "expected"), [("yes", "no"), ("No", "Yes"), ("yes.", "no.")])
def test_yes_no_answers_flip(answer, expected):
    assert hallucinate(answer, seed=0) == expected
    made = make_hallucination({"answer": answer, "answer_type": "closed", "question": "Is there a mass?"}, seed=3)
    assert made.text == expected and made.contradictions


def test_edits_inside_a_negated_clause_are_not_hallucinations():
    for text in ("The heart size is normal. The lungs are clear. There is no pleural granuloma or pneumothorax.",
                 "The heart size is normal. The lungs are clear. There is no pleural pneumothorax or pneumothorax.",
                 "The heart size is normal. The lungs are clear. There is no effusion or pneumothorax."):
        assert contradictions(text, NORMAL) == []


def test_a_normal_report_gets_a_finding_both_readers_see():
    texts = set()
    for seed in range(25):
        made = make_hallucination(NORMAL, seed=seed)
        assert made is not None and made.text != NORMAL["answer"]
        assert st.read_report(made.text).asserted and positive_findings(made.text) - {"No Finding"}
        assert {c.kind for c in made.contradictions} == {"invented_finding"}
        assert "liver" not in made.text and all(e.category in CATEGORIES for e in made.edits)
        texts.add(made.text)
    assert len(texts) > 5


def test_a_lesion_report_differs_from_the_case_in_kind_side_level_or_size():
    truth = sorted(f.key() for f in st.case_findings(LESION))
    kinds = set()
    for seed in range(30):
        made = make_hallucination(LESION, seed=seed)
        assert sorted(f.key() for f in st.read_report(made.text).asserted) != truth
        kinds.update(c.kind for c in made.contradictions)
    assert {"laterality", "size", "denied_finding", "wrong_kind"} <= kinds


def test_open_synthetic_answers_are_wrong_for_the_case():
    case = {"lesion_kind": "mass", "lesion_location": "right upper", "lesion_size": "small", "answer_type": "open"}
    where = {**case, "question": "Where is the mass?", "answer": "right upper lung"}
    assert all(st.read_location(make_hallucination(where, seed=s).text) != ("right", "upper") for s in range(10))
    what = {**case, "question": "What abnormality is seen in the lungs?", "answer": "mass"}
    assert all(st.read_kinds(make_hallucination(what, seed=s).text) != {"mass"} for s in range(10))


def test_real_report_edits_are_read_by_the_labeler_or_in_asserting_sentences():
    report = ("Well circumscribed 11 mm right upper lobe nodule. The heart size is normal. "
              "Negative for pneumothorax, pleural effusion.")
    sample = {"answer": report, "answer_type": "report", "question": ""}
    kinds = {c.kind for s in range(30) for c in make_hallucination(sample, seed=s).contradictions}
    assert {"laterality", "invented_finding"} <= kinds
    assert contradictions(report.replace("11 mm", "22 mm"), sample)[0].kind == "measurement"
    # a laterality word changed in a negated sentence contradicts nothing
    assert contradictions("No left effusion.", {"answer": "No right effusion.", "answer_type": "report"}) == []


def test_answers_with_nothing_to_contradict_are_skipped():
    assert make_hallucination({"answer": "The extremities", "answer_type": "open", "question": "What is not pictured?"},
                              seed=0) is None


@pytest.mark.parametrize("answer", ["left lung", "axial", "CT", "2", "circumscribed lesion",
                                    "lorem ipsum dolor sit amet consectetur", ""])
def test_the_legacy_wrappers_always_change_the_answer_and_repeat_per_seed(answer):
    outputs = [hallucinate_with_edits(answer, seed=s) for s in range(6)]
    assert all(text.strip() and text.strip().lower() != answer.lower() and edits for text, edits in outputs)
    assert outputs == [hallucinate_with_edits(answer, seed=s) for s in range(6)]


def test_open_answers_swap_within_their_group():
    assert {hallucinate("left lower lobe", seed=s) for s in range(30)} >= {"right lower lobe", "left upper lobe"}
    assert {hallucinate("CT", seed=s) for s in range(30)} <= {"MRI", "X-ray", "Ultrasound"}
    assert {hallucinate("2", seed=s) for s in range(20)} == {"1", "3", "4"}
    plurals = {hallucinate("Pulmonary nodules", seed=s) for s in range(10)}
    assert len(plurals) > 1 and all(p.endswith("s") and p != "Pulmonary nodules" for p in plurals)
