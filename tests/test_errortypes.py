"""The error-type taxonomy names what a text gets wrong about its case, shaped like the suite's own texts;
the ground-truth judge ranks a denial above attribute errors; the denial rule's arithmetic."""

from __future__ import annotations

import pytest

from harness.curation.errortypes import (
    ERROR_TYPES,
    admits_denial,
    classify,
    conflict_rank,
    denial_rule,
    error_mix,
    is_lesion_case,
)
from harness.curation.factcheck import contradictions, severity
from harness.curation.textpairs import pick_conflicting_sample
from harness.tasks.synth import Lesion, write_report

MASS = Lesion("mass", "right", "upper", "large", [0, 0, 1, 1])
NODULE = Lesion("nodule", "left", "lower", "small", [0, 0, 1, 1])
EFFUSION = Lesion("effusion", "left", "lower", "small", [0, 0, 1, 1])
NORMAL_REPORT = write_report([])  # "The heart size is normal. The lungs are clear. There is no ..."


def _columns(lesions):
    return {"lesion_kind": ",".join(x.kind for x in lesions) or "none",
            "lesion_location": ",".join(x.location for x in lesions) or "none",
            "lesion_size": ",".join(x.size for x in lesions) or "none"}


def report(*lesions):
    return {"question": "Describe the findings.", "answer": write_report(list(lesions)), "answer_type": "report",
            **_columns(lesions)}


def vqa(question, answer, *lesions):
    kind = "closed" if answer in ("yes", "no") else "open"
    return {"question": question, "answer": answer, "answer_type": kind, **_columns(lesions)}


@pytest.mark.parametrize(("case", "text", "primary", "types"), [
    # reports, in the suite's sentences
    (report(MASS), NORMAL_REPORT, "denial", ("denial",)),
    (report(MASS), "The heart size is normal. The lungs are clear.", "denial", ("denial",)),
    (report(EFFUSION), "The heart size is normal. The lungs are clear.", "denial", ("denial",)),  # left out
    (report(MASS), "There is a large mass in the left upper lung. There is no pleural effusion.", "wrong_side",
     ("wrong_side",)),
    (report(MASS), "There is a large mass in the right lower lung.", "wrong_level", ("wrong_level",)),
    (report(MASS), "There is a small mass in the right upper lung.", "wrong_size", ("wrong_size",)),
    (report(MASS), "There is a large nodule in the right upper lung.", "wrong_kind", ("wrong_kind",)),
    (report(MASS), "There is a small mass in the left lower lung.", "wrong_side",
     ("wrong_side", "wrong_level", "wrong_size")),
    # none of the case's kinds asserted, another one elsewhere: the lesion is missed and a finding invented
    (report(MASS), "There is a small nodule in the left lower lung.", "denial", ("denial", "invented")),
    (report(MASS), write_report([MASS, EFFUSION]), "invented", ("invented",)),
    (report(MASS, NODULE), write_report([MASS]), "denial", ("denial",)),  # one of two lesions left out
    (report(MASS), write_report([MASS]), "none", ("none",)),
    (report(), "There is a small nodule in the left upper lung.", "invented", ("invented",)),
    (report(), "The heart is mildly enlarged. The lungs are clear.", "invented", ("invented",)),  # off-suite
    (report(), NORMAL_REPORT, "none", ("none",)),
    # synth_vqa, by question type
    (vqa("Is there a mass?", "yes", MASS), "no", "denial", ("denial",)),
    (vqa("Is there an abnormality in the lungs?", "yes", MASS), "no", "denial", ("denial",)),
    (vqa("Is there a nodule?", "no", MASS), "yes", "invented", ("invented",)),
    (vqa("Is there a mass in the left lung?", "no", MASS), "yes", "wrong_side", ("wrong_side",)),
    (vqa("Is there a mass?", "yes", MASS), "maybe", "unreadable", ("unreadable",)),
    (vqa("Where is the mass?", "right upper lung", MASS), "left upper lung", "wrong_side", ("wrong_side",)),
    (vqa("Where is the mass?", "right upper lung", MASS), "right lower lung", "wrong_level", ("wrong_level",)),
    (vqa("Where is the mass?", "right upper lung", MASS), "a mass", "unreadable", ("unreadable",)),
    (vqa("What is the size of the mass?", "large", MASS), "small", "wrong_size", ("wrong_size",)),
    (vqa("What abnormality is seen in the lungs?", "mass", MASS), "nodule", "wrong_kind", ("wrong_kind",)),
    (vqa("What abnormality is seen in the lungs?", "mass", MASS), "no abnormality", "denial", ("denial",)),
    (vqa("What abnormality is seen in the lungs?", "no abnormality"), "effusion", "invented", ("invented",)),
    (vqa("What abnormality is seen in the lungs?", "no abnormality"), "no abnormality", "none", ("none",)),
])
def test_classify_names_the_error_of_suite_shaped_texts(case, text, primary, types):
    reading = classify(text, case)
    assert (reading.primary, reading.types) == (primary, types)
    # an error type is never claimed without a contradiction the fact checker confirms, and vice versa
    assert bool(contradictions(text, case)) == (primary not in ("none", "unreadable"))
    assert reading.to_json() == {"primary": primary, "types": list(types)}


def test_the_primary_type_follows_the_documented_priority():
    assert ERROR_TYPES[:6] == ("denial", "invented", "wrong_kind", "wrong_side", "wrong_level", "wrong_size")
    reading = classify("There is a small nodule in the left lower lung.", report(MASS))
    assert reading.primary == reading.types[0] == "denial"
    assert [ERROR_TYPES.index(t) for t in reading.types] == sorted(ERROR_TYPES.index(t) for t in reading.types)


def test_a_denial_outranks_attribute_errors_whatever_their_severities():
    case = report(EFFUSION)  # a small effusion: urgency and size scale the severity of missing it down
    missed = "The heart size is normal. The lungs are clear."  # the text prior: the effusion left out
    other_side = "There is a small right pleural effusion."
    larger = "There is a large left pleural effusion."
    # by severity alone, the side error would be picked over the missed effusion (the old ranking)
    assert severity(contradictions(other_side, case)) > severity(contradictions(missed, case))
    assert conflict_rank(classify(missed, case)) > conflict_rank(classify(other_side, case)) \
        > conflict_rank(classify(larger, case))
    picked = pick_conflicting_sample(case, case["answer"], [larger, other_side, missed, case["answer"]])
    assert picked is not None and picked[0] == missed and picked[1].primary == "denial"
    # no sample with an error (the truth reworded, an unreadable text) -> no pick
    assert pick_conflicting_sample(vqa("Is there a mass?", "yes", MASS), "yes", ["Yes.", "maybe"]) is None


def test_lesion_cases_and_the_items_a_denial_can_answer():
    assert is_lesion_case(report(MASS)) and is_lesion_case(report()) is False
    assert is_lesion_case({"answer": "yes", "question": "Is it normal?"}) is None  # a real row: unlabelled
    assert admits_denial(report(MASS)) and not admits_denial(report())
    assert admits_denial(vqa("Is there a mass?", "yes", MASS))
    assert not admits_denial(vqa("Is there a nodule?", "no", MASS))  # a "no" question: "no" is right
    assert not admits_denial(vqa("Where is the mass?", "right upper lung", MASS))
    assert admits_denial(vqa("What abnormality is seen in the lungs?", "mass", MASS))


def test_the_denial_rule_compares_the_pairs_with_the_bases_own_errors():
    # the base: 6 denials among 8 errors (and 2 right answers) -> b = 0.75, floor 0.70 at tolerance 0.05
    base = ["denial"] * 6 + ["wrong_size", "invented", "none", "none"]
    rule = denial_rule(["denial"] * 6 + ["wrong_side"] * 4, base)
    assert rule["base_denial_share"] == pytest.approx(0.75) and rule["floor"] == pytest.approx(0.70)
    assert rule["pair_denial_share"] == pytest.approx(0.6) and rule["holds"] is False and rule["missing"] == 1
    assert rule["base_errors"] == 8 and rule["base_denials"] == 6 and rule["pairs"] == 10
    assert denial_rule(["denial"] * 7 + ["wrong_side"] * 3, base)["holds"] is True
    unchecked = denial_rule(["wrong_side"], [])  # the base was not measured
    assert unchecked["holds"] is None and unchecked["missing"] == 0


def test_error_mix_counts_lesion_and_normal_cases_apart():
    mix = error_mix([("lesion", "denial"), ("lesion", "denial"), ("lesion", "wrong_size"), ("normal", "invented"),
                     ("normal", "none")])
    assert mix["n"] == {"lesion": 3, "normal": 2}
    assert mix["lesion"] == {"denial": 2, "wrong_size": 1} and mix["normal"] == {"invented": 1, "none": 1}
    assert list(mix["all"]) == ["denial", "invented", "wrong_size", "none"]  # in ERROR_TYPES order
