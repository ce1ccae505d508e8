"""Reading findings back out of the synthetic suite's reports and answers, exactly.

The suite writes its questions, answers and reports from each case's ground truth in a small fixed
vocabulary (defined here: :data:`KINDS`, :data:`SIDES`, :data:`LEVELS`, :data:`SIZES`, :data:`ALLOWED_LEVELS`;
the generator ``harness.tasks.synth`` draws from it), so a text in that vocabulary can be read back into
findings ``(kind, side, level, size)`` without a learned labeler. This module does that reading, for three
users: the exact factuality metrics of the synthetic tasks, the check that a dispreferred answer really
contradicts its case, and the ground-truth judge that picks the model's most wrong sample.

Reading rules (per sentence; a sentence ends at ``.``, ``!``, ``?``, ``;`` or a new line):

- a finding word (``nodule``, ``mass``, ``consolidation``, ``effusion``, ``pneumothorax`` and their plurals)
  preceded in its sentence by a negation cue (``no``, ``not``, ``without``, ``negative for``, ``free of``)
  is *denied*; otherwise it is *asserted*;
- an asserted finding takes the side (``right``/``left``), level (``upper``/``lower``; ``apical`` means upper,
  ``basal``/``basilar`` lower) and size (``small``/``medium``/``large``) words of its own stretch of the
  sentence (from the previous finding word to the next one); an effusion with no level word lies at the
  base and a pneumothorax at the apex, as the suite draws them;
- "the lungs are clear" denies the parenchymal findings (nodule, mass, consolidation), not the pleural ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("nodule", "mass", "consolidation", "effusion", "pneumothorax")
PARENCHYMAL = ("nodule", "mass", "consolidation")
SIDES = ("right", "left")
LEVELS = ("upper", "lower")
SIZES = ("small", "medium", "large")
# Where the suite draws each kind: effusions pool at the bases, pneumothoraces collect at the apices.
ALLOWED_LEVELS = {"effusion": ("lower",), "pneumothorax": ("upper",)}
# The level an effusion or a pneumothorax lies at when the text names none.
DEFAULT_LEVEL = {"effusion": "lower", "pneumothorax": "upper"}
ATTRIBUTES = ("kind", "side", "level", "size")

# The suite's own sentences: the generator (``harness.tasks.synth.write_report``) writes its reports with them
# and the injector (``harness.curation.hallucinate``) its edits, so a finding is said exactly as it is read.
NORMAL_REPORT = "The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax."

_KIND_RE = re.compile(r"\b(nodules?|mass(?:es)?|consolidations?|effusions?|pneumothora(?:x|ces))\b")
_NEGATION_RE = re.compile(r"\b(?:no|not|without|negative for|free of|absence of|absent)\b")
_CLEAR_RE = re.compile(r"\blungs? (?:are|is) clear\b|\bclear lungs?\b")
_SIDE_RE = re.compile(r"\b(right|left)\b")
_LEVEL_RE = re.compile(r"\b(upper|lower|apical|apex|basal|basilar|base)\b")
_SIZE_RE = re.compile(r"\b(small|medium|large)\b")
_ASKED_KIND_RE = re.compile(r"\b(nodule|mass|consolidation|effusion|pneumothorax)\b")
_LEVEL_WORDS = {"upper": "upper", "apical": "upper", "apex": "upper", "lower": "lower", "basal": "lower",
                "basilar": "lower", "base": "lower"}


@dataclass(frozen=True)
class Finding:
    """One lesion: its kind and, where the text says them, side, level and size (None when unsaid)."""

    kind: str
    side: str | None = None
    level: str | None = None
    size: str | None = None

    def key(self, attributes: Sequence[str] = ATTRIBUTES) -> tuple:
        return tuple(getattr(self, a) for a in attributes)


@dataclass(frozen=True)
class Reading:
    """What a report says: the findings it asserts and the kinds it denies."""

    asserted: tuple[Finding, ...]
    denied: frozenset[str]

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self.asserted}


def finding_sentence(kind: str, side: str, level: str, size: str) -> str:
    """The suite's sentence asserting one finding: "There is a small left pleural effusion.", "There is a
    large mass in the right upper lung." (an effusion or a pneumothorax names no level: it has its own)."""
    if kind == "effusion":
        return f"There is a {size} {side} pleural effusion."
    if kind == "pneumothorax":
        return f"There is a {size} {side} apical pneumothorax."
    if kind == "consolidation":
        return f"There is {size} consolidation in the {side} {level} lung."
    return f"There is a {size} {kind} in the {side} {level} lung."


def _kind(word: str) -> str:
    word = word.lower()
    for kind in KINDS:
        if word.startswith(kind[:6]):
            return kind
    raise ValueError(word)


def read_report(text: str) -> Reading:
    """The findings a report asserts and the kinds it denies (see the module docstring)."""
    asserted: list[Finding] = []
    denied: set[str] = set()
    for sentence in re.split(r"[.!?;\n]+", str(text).lower()):
        if _CLEAR_RE.search(sentence):
            denied.update(PARENCHYMAL)
        mentions = list(_KIND_RE.finditer(sentence))
        # the words between two findings split at the last "and" / "," / "with": the left part describes
        # the earlier finding ("a nodule in the right upper lung and"), the right part the later one
        cuts = [0]
        for left, right in zip(mentions, mentions[1:]):
            gap = sentence[left.end():right.start()]
            joints = list(re.finditer(r"\band\b|,|\bwith\b", gap))
            cuts.append(left.end() + (joints[-1].start() if joints else len(gap)))
        cuts.append(len(sentence))
        for index, match in enumerate(mentions):
            kind = _kind(match.group(1))
            if _NEGATION_RE.search(sentence[:match.start()]):
                denied.add(kind)
                continue
            stretch = sentence[cuts[index]:cuts[index + 1]].replace(match.group(1), " ")
            side = _first(_SIDE_RE, stretch)
            level = _first(_LEVEL_RE, stretch)
            asserted.append(Finding(kind, side, _LEVEL_WORDS.get(level or "", DEFAULT_LEVEL.get(kind)),
                                    _first(_SIZE_RE, stretch)))
    # a kind both asserted and denied (e.g. "no effusion. There is a small left effusion.") counts as asserted
    return Reading(tuple(asserted), frozenset(denied - {f.kind for f in asserted}))


def _first(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def case_findings(sample: Mapping[str, Any]) -> list[Finding]:
    """A synthetic case's ground truth from its task row (``lesion_kind``, ``lesion_location``, ``lesion_size``
    columns, comma-separated; ``"none"`` when the case is normal)."""
    kinds = str(sample.get("lesion_kind", "none"))
    if kinds in ("none", ""):
        return []
    locations = str(sample.get("lesion_location", "")).split(",")
    sizes = str(sample.get("lesion_size", "")).split(",")
    found = []
    for index, kind in enumerate(kinds.split(",")):
        side, _, level = (locations[index] if index < len(locations) else "").partition(" ")
        size = sizes[index] if index < len(sizes) else ""
        found.append(Finding(kind.strip(), side or None, level or None, size or None))
    return found


def match_counts(predicted: Sequence[Finding], truth: Sequence[Finding],
                 attributes: Sequence[str] = ATTRIBUTES) -> tuple[int, int, int]:
    """``(true positives, false positives, false negatives)``: a predicted finding matches a true one when
    every attribute in ``attributes`` is equal (an unsaid attribute matches nothing); each true finding
    matches at most once."""
    remaining = [t.key(attributes) for t in truth]
    tp = 0
    for finding in predicted:
        key = finding.key(attributes)
        if key in remaining:
            remaining.remove(key)
            tp += 1
    return tp, len(predicted) - tp, len(remaining)


def read_location(answer: str) -> tuple[str | None, str | None]:
    """``"right upper lung"`` -> ``("right", "upper")``; words not said are None."""
    text = str(answer).lower()
    level = _first(_LEVEL_RE, text)
    return _first(_SIDE_RE, text), _LEVEL_WORDS.get(level or "")


def read_size(answer: str) -> str | None:
    """The size grade an answer names (``small``, ``medium``, ``large``), or None."""
    return _first(_SIZE_RE, str(answer).lower())


def read_question(question: str) -> tuple[str | None, str | None]:
    """The finding kind (singular) and side a question names: "Is there a mass in the left lung?" ->
    ``("mass", "left")``; None for what it does not name."""
    text = str(question).lower()
    return _first(_ASKED_KIND_RE, text), _first(_SIDE_RE, text)


def read_kinds(answer: str) -> set[str] | None:
    """The finding kinds an open "what abnormality" answer names; ``set()`` for "no abnormality" / "normal";
    None when it names none and does not say the case is normal (an unreadable answer)."""
    text = str(answer).lower()
    kinds = {_kind(m.group(1)) for m in _KIND_RE.finditer(text) if not _NEGATION_RE.search(text[:m.start()])}
    if kinds:
        return kinds
    if re.search(r"\bno abnormalit|\bnormal\b|\bnone\b|\bno finding", text):
        return set()
    return None
