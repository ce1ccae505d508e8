"""Reading VQA answers and questions: the answer type, a yes/no answer, the clinical terms and numbers an
answer names, and what a closed question asks about.

The fact checker (``harness.curation.factcheck``) compares these readings of a candidate and of its
reference; the injector (``harness.curation.hallucinate``) swaps a term for another of its group. A term
belongs to one vocabulary group (:data:`GROUPS`: side, level, organ, finding, modality or plane, appearance,
size); the group's name is also the kind of contradiction a swap inside it makes. Synthetic answers are read
exactly by ``harness.findings.synthetic``; a model's free reply to a closed question is read by the
``closed_accuracy`` metric's own reader (``harness.metrics.closed_reader``), which sees no question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.findings.labeler import MENTIONS

# Vocabulary groups for reading open answers and report sentences: a term swapped for another of its group is
# a contradiction of the group's kind.
GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "laterality": (("left", "right"), ("bilateral", "unilateral")),
    "location": (("upper", "lower"), ("anterior", "posterior"), ("superior", "inferior"), ("apical", "basilar"),
                 ("proximal", "distal"), ("frontal", "parietal", "temporal", "occipital")),
    "organ": (("lung", "liver", "kidney", "spleen", "brain", "heart", "bladder", "pancreas", "colon", "stomach",
               "gallbladder", "aorta"), ("chest", "abdomen", "pelvis", "head", "neck"),
              ("cardiovascular", "respiratory", "gastrointestinal", "gi", "neurologic", "musculoskeletal",
               "genitourinary")),
    "wrong_kind": (("effusion", "pneumothorax", "consolidation", "atelectasis", "edema", "nodule", "mass",
                    "fracture", "cardiomegaly", "pneumonia", "emphysema", "opacity", "infiltrate", "calcification",
                    "hemorrhage", "infarct", "tumor", "cyst", "abscess", "granuloma", "hematoma", "stroke",
                    "metastasis", "appendicitis", "cholecystitis", "pancreatitis", "diverticulitis",
                    "obstruction", "pneumoperitoneum", "ascites", "cirrhosis", "hydrocephalus", "meningioma",
                    "glioblastoma", "aneurysm", "thrombus", "diverticulosis"),),
    "modality": (("ct", "mri", "x-ray", "ultrasound"), ("t1", "t2", "flair", "dwi"), ("pa", "ap"),
                 ("axial", "coronal", "sagittal")),
    "appearance": (("hypodense", "hyperdense", "isodense"), ("hypointense", "hyperintense", "isointense"),
                   ("focal", "diffuse"), ("symmetric", "asymmetric"), ("solid", "cystic"), ("smooth", "irregular")),
    "size": (("small", "medium", "large"), ("mild", "moderate", "severe"), ("minimal", "extensive"),
             ("benign", "malignant"), ("acute", "chronic")),
}
PLURALS = {"kidneys": "kidney", "lungs": "lung", "nodules": "nodule", "masses": "mass", "cysts": "cyst",
           "fractures": "fracture", "effusions": "effusion", "opacities": "opacity", "tumors": "tumor",
           "infarcts": "infarct", "abscesses": "abscess", "granulomas": "granuloma", "lesions": "lesion"}
TERM_GROUP: dict[str, tuple[str, int]] = {
    term: (kind, index) for kind, groups in GROUPS.items() for index, group in enumerate(groups) for term in group
}
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
# An answer that says the case is normal ("no abnormality", "unremarkable", "negative").
NORMAL_ANSWER = re.compile(r"\b(?:no abnormalit\w*|normal|unremarkable|none|no finding\w*|negative)\b")

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(cm|mm)?(?![\w.]\d)")
_YES_NO = {"yes": "yes", "no": "no", "y": "yes", "n": "no", "true": "yes", "false": "no"}
_NORMAL_QUESTION = re.compile(r"\b(?:normal|unremarkable|healthy|intact|symmetric|the same size)\b")
_ABNORMAL_QUESTION = re.compile(
    r"\b(?:abnormal\w*|distended|enlarge\w*|atroph\w*|blunt\w*|fluid|free air|air-fluid|lymphadenopathy|"
    r"thicken\w*|dilat\w*|herniat\w*|shift\w*|calcifi\w*|enhanc\w*|obstruct\w*|stones?|lesions?|"
    r"hyperinten\w*|hypoden\w*|hyperden\w*|hypointen\w*|collapse\w*|perforat\w*)\b")
_TECHNIQUE_QUESTION = re.compile(
    r"\b(?:ct|mri|x-?ray|ultrasound|contrast|t1|t2|flair|dwi|view|plane|axial|coronal|sagittal|image of|"
    r"taken|modality|film|pa|ap|weighted)\b")
_MENTIONS = {o: re.compile(rf"\b(?:{p})\b") for o, p in MENTIONS.items() if o != "Support Devices"}


def normal_text(text: object) -> str:
    """Lowercased words and numbers separated by single spaces: two answers that differ only in case and
    punctuation read the same."""
    return re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()


def yes_no(text: object) -> str | None:
    """"yes" or "no" for an answer that is exactly one of them (also y / n / true / false), else None."""
    return _YES_NO.get(normal_text(text))


def guess_answer_type(answer: str) -> str:
    """``closed`` for yes/no, ``report`` for a text of several sentences or many words, else ``open``."""
    if yes_no(answer) is not None:
        return "closed"
    text = str(answer).strip()
    if len(text.split()) >= 8 or len(re.findall(r"[.!?](?:\s|$)", text)) >= 2:
        return "report"
    return "open"


def terms(text: str) -> list[tuple[str, str, int]]:
    """(term, group kind, group index) for every vocabulary term of ``text``, in order (plurals made singular)."""
    out = []
    for word in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)?", str(text).lower()):
        word = PLURALS.get(word, word)
        if word in TERM_GROUP:
            out.append((word, *TERM_GROUP[word]))
    return out


def numbers(text: str) -> list[str]:
    """The numbers ``text`` names, digits first, then number words as digits ("two nodules, 11 mm" -> 11, 2)."""
    lowered = str(text).lower()
    found = [m.group(1) for m in _NUMBER.finditer(lowered)]
    found += [str(NUMBER_WORDS.index(w) + 1) for w in re.findall(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", lowered)]
    return found


def question_finding(question: str) -> str | None:
    """The finding a question asks about: a labeler observation, a finding term, "abnormality", or None."""
    text = question.lower()
    for observation, pattern in _MENTIONS.items():
        if pattern.search(text):
            return observation
    for term in GROUPS["wrong_kind"][0]:
        if re.search(rf"\b{term}", text):
            return term
    if re.search(r"\b(?:abnormal|patholog|lesion|disease|hemorrhag|bleed|tumou?r)", text):
        return "abnormality"
    return None


@dataclass(frozen=True)
class ClosedQuestion:
    """What a closed (yes/no) question asks about."""

    finding: str | None  # a labeler observation, a finding term or "abnormality"; None when it names none
    normal: bool  # it asks whether something is normal, so "no" asserts an abnormality
    technique: bool  # it names no finding and asks about the imaging (modality, plane, view, contrast)


def read_closed_question(question: str) -> ClosedQuestion:
    """The finding a closed question names (:func:`question_finding`); else an abnormality when it asks
    whether something is normal ("Is the heart normal?", inverted) or names an abnormal state ("Is the bowel
    dilated?"); else whether it asks about the imaging."""
    text = question.lower()
    finding = question_finding(question)
    normal = finding is None and _NORMAL_QUESTION.search(text) is not None
    if normal or (finding is None and _ABNORMAL_QUESTION.search(text)):
        finding = "abnormality"
    technique = finding is None and _TECHNIQUE_QUESTION.search(text) is not None
    return ClosedQuestion(finding, normal, technique)
