"""harness.findings: the one reader of findings from text sits below curation, metrics and tasks, and reads back
exactly what the synthetic suite writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from harness.findings import synthetic as st
from harness.findings.answers import (
    guess_answer_type,
    normal_text,
    numbers,
    read_closed_question,
    terms,
    yes_no,
)
from harness.findings.reports import asserted_finding, extra_findings, sentences
from harness.tasks.synth import Lesion, write_report

REPO = Path(__file__).resolve().parents[2]
FINDINGS = REPO / "harness" / "findings"


def _imported_modules(path: Path) -> set[str]:
    """What a findings module imports (lazy ``module:attr`` strings too), read by the import test's walker."""
    spec = importlib.util.spec_from_file_location("_import_graph", REPO / "scripts" / "import_graph.py")
    walker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walker)
    names, lazy = walker.read_imports(path, "harness.findings")
    return set(names) | set(lazy)


def test_findings_imports_only_the_plumbing_the_stdlib_and_numpy():
    files = sorted(FINDINGS.glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "synthetic", "labeler", "reports", "answers"}
    allowed_harness = ("harness.core", "harness.findings")
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")[0]
            if top == "harness":
                assert name.startswith(allowed_harness), f"{path.name} imports {name} (findings sits below it)"
            else:
                assert top in sys.stdlib_module_names or top in ("__future__", "numpy"), f"{path.name}: {name}"
    # the walker sees the package's real imports
    assert any(name.startswith("harness.findings.labeler") for name in _imported_modules(FINDINGS / "reports.py"))


def test_every_finding_sentence_the_suite_writes_reads_back_as_that_finding():
    for kind in st.KINDS:
        for side in st.SIDES:
            for level in st.ALLOWED_LEVELS.get(kind, st.LEVELS):
                for size in st.SIZES:
                    reading = st.read_report(st.finding_sentence(kind, side, level, size))
                    assert reading.asserted == (st.Finding(kind, side, level, size),)
    # the generator writes with the same sentences
    lesion = Lesion("mass", "left", "upper", "large", [0, 0, 4, 4])
    assert st.finding_sentence("mass", "left", "upper", "large") in write_report([lesion])


def test_the_normal_report_asserts_nothing_and_denies_every_kind():
    assert write_report([]) == st.NORMAL_REPORT
    reading = st.read_report(st.NORMAL_REPORT)
    assert reading.asserted == () and reading.denied == frozenset(st.KINDS)


def test_synthetic_questions_and_answers():
    assert st.read_question("Is there a mass in the left lung?") == ("mass", "left")
    assert st.read_question("What abnormality is seen in the lungs?") == (None, None)
    assert st.read_question("Are there nodules?") == (None, None)  # the suite asks in the singular
    assert st.read_size("A large one.") == "large" and st.read_size("no idea") is None
    assert st.read_location("right lower lung") == ("right", "lower")
    assert st.read_kinds("no abnormality") == set() and st.read_kinds("nodule and mass") == {"nodule", "mass"}


@pytest.mark.parametrize(("question", "finding", "normal", "technique"), [
    ("Is there a pleural effusion?", "Pleural Effusion", False, False),
    ("Is the heart normal?", "abnormality", True, False),           # "no" asserts an abnormality
    ("Is the bowel dilated?", "abnormality", False, False),
    ("Is this a T1 weighted image?", None, False, True),
    ("Is the patient male?", None, False, False),
    ("Is there a granuloma?", "granuloma", False, False),
])
def test_what_a_closed_question_asks(question, finding, normal, technique):
    asked = read_closed_question(question)
    assert (asked.finding, asked.normal, asked.technique) == (finding, normal, technique)


def test_answers_yes_no_type_terms_and_numbers():
    assert yes_no("Yes.") == "yes" and yes_no("FALSE") == "no" and yes_no("yes, a nodule") is None
    assert normal_text("  The LEFT lung!! ") == "the left lung"
    assert guess_answer_type("No") == "closed" and guess_answer_type("left lung") == "open"
    assert guess_answer_type("The lungs are clear. No effusion.") == "report"
    assert terms("Two nodules in the left kidneys") == [("nodule", "wrong_kind", 0), ("left", "laterality", 0),
                                                       ("kidney", "organ", 0)]
    assert numbers("two nodules, 11 mm and 1.5 cm") == ["11", "1.5", "2"]


def test_real_report_readings_beyond_the_labeler():
    assert sentences("A 1.5 cm nodule. No effusion; stable.") == ["A 1.5 cm nodule", "No effusion", "stable"]
    asserted, denied = extra_findings("Calcified granuloma in the left lung. No hernia.")
    assert asserted == {"calcif", "granul"} and denied == {"hernia"}
    assert asserted_finding("There is a small right pleural effusion.") == "Pleural Effusion"
    assert asserted_finding("There is a calcified granuloma.") == "abnormality"
    assert asserted_finding("There is no pneumothorax.") is None
