"""A small deterministic, rule-based hallucination injector for medical answers and reports.

POVID (and MMedPO's offline ``rules`` generator, which builds on this module) need a dispreferred answer
that is plausible but contradicts the ground truth, without calling a judge LLM. The rules edit the
ground truth the way hallucinations do:

- yes/no answers flip (``yes`` <-> ``no``);
- negations flip (``no``/``without``/``normal``/``absent``/``negative`` and their opposites);
- laterality and position swap (``left`` <-> ``right``, ``upper`` <-> ``lower``, ...);
- a finding, organ, modality or imaging plane is replaced by another from a small vocabulary;
- a number changes.

``hallucinate(answer, seed=s)`` applies one applicable rule chosen by the seed, so the same (answer, seed)
always gives the same text; when no rule applies it asserts an invented finding.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

YES_NO = {"yes": "no", "no": "yes"}

# word -> opposite; both directions are listed so either side of a pair can be edited
NEGATION_SWAPS = {
    "normal": "abnormal", "abnormal": "normal",
    "absent": "present", "present": "absent",
    "negative": "positive", "positive": "negative",
    "without": "with",
    "unremarkable": "remarkable",
    "clear": "opacified",
    "intact": "disrupted",
    "stable": "worsening",
}
POSITION_SWAPS = {
    "left": "right", "right": "left",
    "upper": "lower", "lower": "upper",
    "anterior": "posterior", "posterior": "anterior",
    "superior": "inferior", "inferior": "superior",
    "medial": "lateral", "lateral": "medial",
    "bilateral": "unilateral", "unilateral": "bilateral",
    "small": "large", "large": "small",
    "mild": "severe", "severe": "mild",
}
# interchangeable terms within each group; a hallucination swaps one term for another of its group
VOCABULARY = {
    "finding": [
        "pneumothorax", "pleural effusion", "cardiomegaly", "atelectasis", "pneumonia", "edema",
        "consolidation", "nodule", "mass", "fracture", "emphysema", "hemorrhage", "infarct", "cyst",
    ],
    "organ": ["lung", "liver", "kidney", "spleen", "heart", "brain", "bladder", "pancreas", "colon", "stomach"],
    "modality": ["CT", "MRI", "X-ray", "ultrasound"],
    "plane": ["axial", "coronal", "sagittal"],
}
INVENTED_FINDINGS = [
    "There is a small right pleural effusion.",
    "A left lower lobe consolidation is present.",
    "The heart is enlarged.",
    "There is a right apical pneumothorax.",
]


def hallucinate(answer: str, *, seed: int, question: str = "") -> str:
    """A plausible answer that contradicts ``answer``; deterministic for a given ``seed``.

    ``question`` is accepted for rules that depend on it (a yes/no question always gets the flipped
    answer); the generic rules only read the answer.
    """
    text = str(answer).strip()
    rng = random.Random(f"{seed}:{text}")
    flipped = _flip_yes_no(text)
    if flipped is not None:
        return flipped
    # choose a rule first, then one of its edits, so rules with many edits (vocabulary) do not crowd out
    # the others
    applicable = [edits for edits in (_changed(rule(text), text) for rule in RULES) if edits]
    if applicable:
        return rng.choice(rng.choice(applicable))
    return _invent(text, rng)


def _changed(edits: list[str], text: str) -> list[str]:
    return [e for e in edits if e.strip() and e.strip().lower() != text.lower()]


def _flip_yes_no(text: str) -> str | None:
    word = text.rstrip(".!").strip()
    if word.lower() in YES_NO:
        return _match_case(word, YES_NO[word.lower()]) + text[len(word):]
    return None


def _match_case(original: str, replacement: str) -> str:
    if any(c.isupper() for c in replacement):  # an abbreviation keeps its own spelling (CT, MRI)
        return replacement
    if original.isupper() and len(original) > 4:  # a shouted word, not an abbreviation
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _replace_at(text: str, match: re.Match, replacement: str) -> str:
    return text[: match.start()] + _match_case(match.group(0), replacement) + text[match.end():]


def _word_swaps(table: dict[str, str]) -> Callable[[str], list[str]]:
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(table, key=len, reverse=True)) + r")\b", re.I)

    def rule(text: str) -> list[str]:
        return [_replace_at(text, m, table[m.group(0).lower()]) for m in pattern.finditer(text)]

    return rule


def _drop_negation(text: str) -> list[str]:
    """"no pneumothorax" -> "a pneumothorax"; "There is no X" -> "There is X" reads as a positive finding."""
    edits = []
    for match in re.finditer(r"\b(no evidence of|no signs? of|no|not)\s+", text, re.I):
        replacement = "" if match.group(1).lower() == "not" else _match_case(match.group(1), "evidence of ")
        edits.append(text[: match.start()] + replacement + text[match.end():])
    return edits


def _vocabulary_swaps(text: str) -> list[str]:
    edits = []
    for terms in VOCABULARY.values():
        pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\b", re.I)
        for match in pattern.finditer(text):
            current = match.group(0).lower()
            for other in terms:
                if other.lower() != current:
                    edits.append(_replace_at(text, match, other))
    return edits


def _number_changes(text: str) -> list[str]:
    return [text[: m.start()] + str(int(m.group(0)) + 1) + text[m.end():] for m in re.finditer(r"\b\d+\b", text)]


RULES: list[Callable[[str], list[str]]] = [
    _word_swaps(NEGATION_SWAPS),
    _drop_negation,
    _word_swaps(POSITION_SWAPS),
    _vocabulary_swaps,
    _number_changes,
]


def _invent(text: str, rng: random.Random) -> str:
    """No rule applies: a short answer becomes its negation, a report gains an invented finding."""
    if len(text.split()) <= 4:
        return f"no {text}" if text else rng.choice(VOCABULARY["finding"])
    return f"{text.rstrip()} {rng.choice(INVENTED_FINDINGS)}"
