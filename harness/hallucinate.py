"""The project's one deterministic, rule-based hallucination injector for medical answers and reports.

POVID, the default DPO text pairs (``harness.pipeline``) and MMedPO's offline ``rules`` generator
(``mmedpo.rules``) all need a dispreferred answer that is plausible but contradicts the ground truth,
without calling a judge LLM. MMedPO asks for "a plausible hallucination" of the ground truth: a wrong
finding, location or laterality, modality, severity or diagnosis (arXiv 2412.06141, Sec. 3.1). The rules
make one by editing the ground truth over a small medical vocabulary:

- yes/no answers flip (``yes`` <-> ``no``, category ``answer``);
- negations flip (``no effusion`` -> ``effusion``, ``a nodule`` -> ``no nodule``, ``normal`` ->
  ``abnormal``, ``no abnormality`` -> a specific finding; ``negation``);
- a finding or diagnosis is swapped for another of its group (``finding``, ``diagnosis``);
- laterality, location, modality and severity terms are swapped within their group (``laterality``,
  ``location``, ``modality``, ``severity``);
- counts and measurements change (``2`` -> ``3``, ``two lesions`` -> ``three lesions``, ``1.5 cm`` ->
  ``2.2 cm``; ``count``), except list numbers such as ``1.`` or ``2)`` at the start of a line or sentence,
  and counts below 2 inside a sentence (``one nodule`` -> ``two nodule`` would not read as written);
- a text with nothing to edit gets a false finding appended (``append``).

Every edit is typed (:data:`CATEGORIES`), so a caller can weigh how clinically salient the change is
(MMedPO's offline relevance scorer does). The same ``(answer, seed)`` always gives the same result, and the
result always differs from the answer.
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
# Negation flips: (affirmative word, negated replacement), applied both ways where the replacement is a word.
NEGATIONS = (
    ("no", ""), ("not", ""), ("without", "with"), ("absent", "present"), ("normal", "abnormal"),
    ("negative", "positive"), ("clear", "opacified"), ("unremarkable", "abnormal"), ("a", "no"), ("an", "no"),
)
CLOSED_FLIP = {"yes": "no", "no": "yes"}

# Every category an edit can have, most clinically serious first.
CATEGORIES = ("negation", "answer", "diagnosis", "finding", "laterality", "count", "location", "modality",
              "severity", "append")
# Counts written as words (VQA-RAD "how many" answers use both "2" and "two").
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# A false finding appended when nothing in the text can be edited (short or unusual answers).
APPENDED = (
    "There is a small left pleural effusion.", "A right upper lobe nodule is present.",
    "There is evidence of an acute fracture.", "Mild cardiomegaly is noted.",
    "A mass is seen in the right lower lobe.",
)

# Abbreviations keep their own spelling whatever the case of the word they replace.
CANONICAL = {"ct": "CT", "mri": "MRI", "x-ray": "X-ray", "t1": "T1", "t2": "T2", "flair": "FLAIR", "pa": "PA",
             "ap": "AP"}


@dataclass(frozen=True)
class Edit:
    """One change the injector made: its category (one of :data:`CATEGORIES`) and the words swapped."""

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
_NUMBER = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")(?![\w-]|\.\d)", re.IGNORECASE)
_LIST_NUMBER = re.compile(r"(?:^|\n|[.:;]\s)\s*$")
_GENERIC_NORMAL = re.compile(r"\bno (?:acute )?(?:abnormalit(?:y|ies)|findings?|lesions?)\b", re.IGNORECASE)


def hallucinate(answer: str, *, seed: int, question: str = "") -> str:
    """A plausible answer that contradicts ``answer``; deterministic for a given ``seed``.

    The text of :func:`hallucinate_with_edits`; ``question`` is accepted for callers that pass it.
    """
    return hallucinate_with_edits(answer, seed=seed, question=question)[0]


def hallucinate_with_edits(answer: str, *, seed: int, question: str = "",
                           max_edits: int = 1) -> tuple[str, list[Edit]]:
    """Return ``(hallucinated text, edits)``; the text always differs from ``answer``.

    Short closed answers ("yes"/"no", trailing punctuation kept) are flipped. Otherwise up to ``max_edits``
    vocabulary terms are swapped (chosen at random with ``seed``); with no clinical term to edit a false
    finding is appended. ``question`` is accepted for a uniform signature; the rules read only the answer.
    """
    text = str(answer)
    rng = random.Random(f"{seed}:{text}")
    stripped = text.strip()
    closed = stripped.rstrip(".!").strip()
    if closed.lower() in CLOSED_FLIP:
        flipped = _match_case(closed, CLOSED_FLIP[closed.lower()]) + stripped[len(closed):]
        return flipped, [Edit("answer", stripped, flipped)]
    candidates = candidate_edits(text)
    if not candidates:
        return _append(text, rng)
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
    if result.lower() == stripped.lower() or not result:
        # an edit that vanished (e.g. deleting "not" from "not") falls back to appending a finding
        return _append(text, rng)
    return result, edits


def category_of(term: str) -> str | None:
    """The vocabulary category of a term (lower-cased), or None when it is not clinical vocabulary."""
    term = term.lower()
    if term in NEGATION_TABLE:
        return "negation"
    if _NUMBER.fullmatch(term):
        return "count"
    entry = SWAPS.get(term)
    return entry[0] if entry else None


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
    for match in _NUMBER.finditer(text):
        after = text[match.end():match.end() + 1]
        if after in (".", ")") and _LIST_NUMBER.search(text[:match.start()]):
            continue  # "1. No effusion": a list number, not a count
        options = _other_numbers(match.group(1), bare=text.strip().rstrip(".").lower() == match.group(1).lower())
        if options:
            found.append((match, "count", options))
    return sorted(found, key=lambda c: c[0].start())


def _other_numbers(term: str, *, bare: bool) -> tuple[str, ...]:
    """Plausible wrong values for a count or measurement: n-1, n+1, n+2 (words stay words, 1..10);
    decimals scaled by 0.5, 1.5 and 2 with the same number of decimals. Inside a sentence a count stays
    plural (2 or more: "two lesions" never becomes "one lesions"), and a count of 0 or 1 is left alone;
    a bare answer ("2", "one") takes any of them."""
    if "." in term:
        decimals = len(term.split(".")[1])
        values = (f"{float(term) * f:.{decimals}f}" for f in (0.5, 1.5, 2.0))
        return tuple(dict.fromkeys(v for v in values if float(v) != float(term)))
    lower = term.lower()
    words = lower in NUMBER_WORDS
    n = NUMBER_WORDS.index(lower) + 1 if words else int(term)
    least = 0 if bare else 2
    if n < least:
        return ()
    values = [m for m in (n - 1, n + 1, n + 2) if m >= max(least, 1 if words else 0)]
    if words:
        return tuple(NUMBER_WORDS[m - 1] for m in values if m <= len(NUMBER_WORDS))
    return tuple(str(m) for m in values)


def _append(text: str, rng: random.Random) -> tuple[str, list[Edit]]:
    sentence = rng.choice(APPENDED)
    joined = f"{text.rstrip()} {sentence}".strip() if text.strip() else sentence
    return joined, [Edit("append", "", sentence)]


def _match_case(template: str, word: str) -> str:
    if word in CANONICAL:
        return CANONICAL[word]
    # a shouted word, not an abbreviation: "CT" -> "Ultrasound", "EFFUSION" -> "PNEUMOTHORAX"
    if template.isupper() and len(template) > 4:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
