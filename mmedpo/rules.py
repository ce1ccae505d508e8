"""The offline text-hallucination injector (``rules``): deterministic, clinically typed edits.

MMedPO's dispreferred text is "a plausible hallucination" of the ground truth (arXiv 2412.06141, Sec. 3.1):
a wrong finding, location or laterality, modality, severity or diagnosis. Without a judge LLM the project
makes one with rules over a small medical vocabulary. Each edit is typed (``negation``, ``finding``,
``laterality``, ``location``, ``modality``, ``severity``, ``answer``), so the offline relevance scorer
(``mmedpo.relevance.heuristic_score``) can weight the pair by how clinically salient the change is.

The same ``(answer, seed)`` always gives the same hallucination.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Groups of interchangeable terms: swapping within a group gives a fluent but clinically wrong text.
FINDINGS = (
    ("effusion", "pneumothorax", "consolidation", "atelectasis", "edema", "nodule", "mass", "fracture",
     "cardiomegaly", "pneumonia", "emphysema", "opacity", "infiltrate", "calcification", "hemorrhage",
     "infarct", "tumor", "cyst", "abscess", "lesion", "granuloma"),
)
DIAGNOSES = (
    ("pneumonia", "tuberculosis", "lung cancer", "pulmonary embolism", "heart failure", "sarcoidosis"),
    ("stroke", "glioblastoma", "meningioma", "metastasis", "abscess", "hydrocephalus"),
    ("appendicitis", "cholecystitis", "pancreatitis", "diverticulitis", "bowel obstruction"),
)
LATERALITY = (("left", "right"), ("bilateral", "unilateral"), ("ipsilateral", "contralateral"))
LOCATIONS = (
    ("upper", "lower"), ("anterior", "posterior"), ("medial", "lateral"), ("superior", "inferior"),
    ("apical", "basilar"), ("proximal", "distal"),
    ("lung", "liver", "kidney", "spleen", "brain", "heart", "bladder", "pancreas", "colon", "stomach"),
    ("chest", "abdomen", "pelvis", "head", "neck"),
)
MODALITIES = (("ct", "mri", "x-ray", "ultrasound"), ("t1", "t2", "flair"), ("pa", "ap", "lateral"),
              ("axial", "coronal", "sagittal"))
SEVERITY = (("mild", "moderate", "severe"), ("small", "medium", "large"), ("minimal", "extensive"),
            ("acute", "chronic"), ("stable", "worsening", "improved"), ("benign", "malignant"))
# Negation flips: (affirmative pattern, negated replacement) both ways.
NEGATIONS = (
    ("no", ""), ("not", ""), ("without", "with"), ("absent", "present"), ("normal", "abnormal"),
    ("negative", "positive"), ("clear", "opacified"), ("unremarkable", "abnormal"), ("a", "no"), ("an", "no"),
)
CLOSED_FLIP = {"yes": "no", "no": "yes"}

# How clinically serious each kind of edit is (used by the offline relevance scorer and documented there).
CATEGORY_WEIGHT = {
    "negation": 1.0, "answer": 1.0, "diagnosis": 0.9, "finding": 0.9, "laterality": 0.8,
    "location": 0.7, "modality": 0.6, "severity": 0.5, "append": 0.4,
}

# A false finding appended when nothing in the text can be edited (short or unusual answers).
APPENDED = (
    "There is a small left pleural effusion.", "A right upper lobe nodule is present.",
    "There is evidence of an acute fracture.", "Mild cardiomegaly is noted.",
    "A mass is seen in the right lower lobe.",
)


@dataclass(frozen=True)
class Edit:
    category: str
    before: str
    after: str


def _swap_table() -> dict[str, tuple[str, tuple[str, ...]]]:
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for category, groups in (("severity", SEVERITY), ("modality", MODALITIES), ("location", LOCATIONS),
                             ("laterality", LATERALITY), ("diagnosis", DIAGNOSES), ("finding", FINDINGS)):
        for group in groups:
            for term in group:
                # later categories (findings) win for terms listed twice, e.g. "pneumonia"
                table[term] = (category, tuple(t for t in group if t != term))
    return table


SWAPS = _swap_table()
NEGATION_TABLE = {**{b: a for a, b in NEGATIONS if b}, **{a: b for a, b in NEGATIONS}}
# Multi-word terms first so "lung cancer" is matched before "lung".
_TERMS = sorted(set(SWAPS) | set(NEGATION_TABLE), key=lambda t: (-len(t), t))
_PATTERN = re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in _TERMS) + r")(?![\w-])", re.IGNORECASE)


_GENERIC_NORMAL = re.compile(r"\bno (?:acute )?(?:abnormalit(?:y|ies)|findings?|lesions?)\b", re.IGNORECASE)


def category_of(term: str) -> str | None:
    """The vocabulary category of a term (lower-cased), or None when it is not clinical vocabulary."""
    term = term.lower()
    if term in NEGATION_TABLE:
        return "negation"
    entry = SWAPS.get(term)
    return entry[0] if entry else None


# Abbreviations keep their own spelling whatever the case of the word they replace.
CANONICAL = {"ct": "CT", "mri": "MRI", "x-ray": "X-ray", "t1": "T1", "t2": "T2", "flair": "FLAIR", "pa": "PA",
             "ap": "AP"}


def _match_case(template: str, word: str) -> str:
    if word in CANONICAL:
        return CANONICAL[word]
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def candidate_edits(text: str) -> list[tuple[re.Match, str, tuple[str, ...]]]:
    """Every place in ``text`` the injector could edit: (match, category, replacements)."""
    found = []
    for match in _PATTERN.finditer(text):
        term = match.group(1).lower()
        if term in NEGATION_TABLE:
            found.append((match, "negation", (NEGATION_TABLE[term],)))
        else:
            category, options = SWAPS[term]
            found.append((match, category, options))
    return found


def inject(answer: str, *, seed: int = 0, max_edits: int = 1) -> tuple[str, list[Edit]]:
    """Return ``(hallucinated text, edits)``; the text always differs from ``answer``.

    Short closed answers ("yes"/"no") are flipped. Otherwise up to ``max_edits`` vocabulary terms are
    swapped (chosen at random with ``seed``); with no clinical term to edit a false finding is appended.
    """
    text = str(answer)
    rng = random.Random(f"{seed}:{text}")
    closed = text.strip().rstrip(".").lower()
    if closed in CLOSED_FLIP:
        flipped = _match_case(text.strip(), CLOSED_FLIP[closed])
        return flipped, [Edit("answer", text.strip(), flipped)]
    candidates = candidate_edits(text)
    if not candidates:
        sentence = rng.choice(APPENDED)
        joined = f"{text.rstrip()} {sentence}".strip() if text.strip() else sentence
        return joined, [Edit("append", "", sentence)]
    generic = _GENERIC_NORMAL.search(text)
    if generic and rng.random() < 0.5:
        # "no abnormality" -> a specific false finding (dropping "no" alone gives a vague "abnormality")
        finding = rng.choice(FINDINGS[0])
        result = text[:generic.start()] + _match_case(generic.group(0), finding) + text[generic.end():]
        return result, [Edit("negation", generic.group(0), finding)]
    chosen = rng.sample(candidates, k=min(max_edits, len(candidates)))
    chosen.sort(key=lambda c: c[0].start())
    pieces, edits, cursor = [], [], 0
    for match, category, options in chosen:
        before = match.group(1)
        after = _match_case(before, rng.choice(options))
        pieces.append(text[cursor:match.start()])
        pieces.append(after)
        cursor = match.end()
        edits.append(Edit(category, before, after))
    pieces.append(text[cursor:])
    result = re.sub(r"\s{2,}", " ", "".join(pieces)).strip()
    result = re.sub(r"\b([Aa]) ([aeiouAEIOU])", r"\1n \2", result)  # "a opacity" -> "an opacity"
    if result.lower() == text.strip().lower() or not result:
        # an edit that vanished (e.g. deleting "not" from "not") falls back to appending a finding
        sentence = rng.choice(APPENDED)
        return f"{text.rstrip()} {sentence}".strip(), [Edit("append", "", sentence)]
    return result, edits
