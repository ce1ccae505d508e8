"""Does a candidate answer or report contradict its case, and how seriously?

A dispreferred text is only worth training against when it is a real hallucination: it asserts what the
ground truth denies, denies what it asserts, or changes a finding's kind, side, level, size or count. An
edit inside a negated clause ("no pleural effusion" -> "no pleural granuloma") contradicts nothing, and
neither does a paraphrase. :func:`contradictions` lists what a candidate contradicts; an empty list means
it is not a hallucination. :func:`severity` turns that list into the pair's offline clinical-relevance score.

How a candidate is read, by the kind of row (``sample`` is a task row):

- synthetic rows (``lesion_kind``, ``lesion_location``, ``lesion_size`` columns) are read exactly with
  ``harness.findings.synthetic``: reports against the case's findings (kind, side, level, size), closed
  answers by the question's finding and side, open answers by what they ask (location, size, abnormality);
- real reports with the project's CheXpert-style labeler (``harness.findings.labeler``) against the
  reference report, plus the chest terms the labeler does not know (granuloma, scarring, hernia, ...;
  ``harness.findings.reports``), plus side, level, size and number changes inside sentences that assert a
  finding;
- real closed (yes/no) answers: a flipped answer is wrong by construction; it is a denied or invented
  finding when the question names one (``harness.findings.answers.read_closed_question``);
- real open answers against the reference: a term swapped for another of its vocabulary group (side,
  level, organ, finding, modality, plane, size; ``harness.findings.answers``), a changed number, or a
  finding claimed for a normal answer.

Every reading of a text into findings is ``harness.findings``'s; this module compares the readings and scores them.

Severity (:data:`SEVERITY`, a score in [0, 1] per kind of contradiction) is scaled, where the case says
it, by how urgent the finding is (:data:`URGENCY`) and by its size (:data:`SIZE_FACTOR`): denying a large
pneumothorax scores higher than inventing a small nodule.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.findings import labeler as cx
from harness.findings import synthetic as st
from harness.findings.answers import (
    GROUPS,
    NORMAL_ANSWER,
    guess_answer_type,
    normal_text,
    numbers,
    read_closed_question,
    terms,
    yes_no,
)
from harness.findings.reports import asserted_finding, extra_findings, sentences

# Clinical severity of each kind of contradiction, before the finding's urgency and size scale it.
# Missing a finding delays treatment (worst); inventing one costs a work-up; a wrong side risks a
# wrong-site procedure; wrong level, size or count mislead follow-up; a wrong non-finding answer
# (modality, plane, organ) misleads least.
SEVERITY: dict[str, float] = {
    "denied_finding": 1.0,    # says absent a finding the case has
    "omitted_finding": 0.7,   # a report that leaves out a finding the case has (neither says nor denies it)
    "invented_finding": 0.85,  # asserts a finding the case does not have
    "wrong_kind": 0.8,        # the right place, another finding (a nodule called a mass)
    "laterality": 0.75,       # the right finding on the wrong side
    "location": 0.55,         # the right finding and side at the wrong level or region
    "organ": 0.55,            # another organ or body region named
    "appearance": 0.45,       # the wrong density, signal, pattern or shape (hypodense -> hyperdense)
    "size": 0.45,             # the wrong size or severity grade (scaled by how far the grade moved)
    "count": 0.5,             # the wrong number of lesions
    "measurement": 0.45,      # a changed measurement (1.5 cm -> 2.2 cm)
    "modality": 0.35,         # another imaging modality, sequence, plane or view
    "wrong_answer": 0.5,      # a closed answer flipped on a question that names no finding
}
# How urgent a finding is, for the findings the suite draws and the labeler's observations.
URGENCY: dict[str, float] = {
    "pneumothorax": 1.0, "mass": 0.95, "consolidation": 0.85, "effusion": 0.8, "nodule": 0.7,
    "Pneumothorax": 1.0, "Lung Lesion": 0.9, "Pneumonia": 0.9, "Consolidation": 0.85, "Edema": 0.85,
    "Fracture": 0.85, "Enlarged Cardiomediastinum": 0.8, "Pleural Effusion": 0.8, "Lung Opacity": 0.75,
    "Cardiomegaly": 0.7, "Atelectasis": 0.65, "Pleural Other": 0.6, "Support Devices": 0.5,
}
DEFAULT_URGENCY = 0.75  # a finding the tables do not name, or none named ("an abnormality")
SIZE_FACTOR: dict[str | None, float] = {"small": 0.75, "medium": 0.88, "large": 1.0, None: 0.88}
# A second and later contradiction adds this share of its own severity (capped at 1).
EXTRA_SHARE = 0.15

SYNTH_OBSERVATION = {"nodule": "Lung Lesion", "mass": "Lung Lesion", "consolidation": "Consolidation",
                     "effusion": "Pleural Effusion", "pneumothorax": "Pneumothorax"}


@dataclass(frozen=True)
class Contradiction:
    """One thing a candidate contradicts: its kind (a key of :data:`SEVERITY`), what, and how serious."""

    kind: str
    detail: str
    severity: float


def severity(found: Sequence[Contradiction]) -> float:
    """A pair's offline clinical-relevance raw score in [0, 1]: the most serious contradiction, plus
    :data:`EXTRA_SHARE` of each further one (capped at 1); 0 when it contradicts nothing."""
    if not found:
        return 0.0
    scores = sorted((c.severity for c in found), reverse=True)
    return round(min(1.0, scores[0] + EXTRA_SHARE * sum(scores[1:])), 4)


def contradictions(candidate: str, sample: Mapping[str, Any]) -> list[Contradiction]:
    """What ``candidate`` contradicts in ``sample`` (a task row: ``answer``, ``answer_type``, ``question``;
    synthetic rows also ``lesion_kind``, ``lesion_location``, ``lesion_size``); empty = not a hallucination."""
    answer = str(sample.get("answer", ""))
    kind = str(sample.get("answer_type", "")).strip().lower() or guess_answer_type(answer)
    synthetic = "lesion_kind" in sample and sample.get("lesion_kind") is not None
    candidate = str(candidate)
    if normal_text(candidate) == normal_text(answer):
        return []
    if kind == "report":
        return _synth_report(candidate, sample) if synthetic else _real_report(candidate, answer)
    truth, said = yes_no(answer), yes_no(candidate)
    if truth is not None:
        if said is None or said == truth:
            return []
        return _synth_closed(said, sample) if synthetic else _real_closed(said, str(sample.get("question", "")))
    if synthetic:
        return _synth_open(candidate, sample)
    return _open(candidate, answer)


# ------------------------------------------------------------------------------------------- helpers


def _urgency(kind: str | None) -> float:
    return URGENCY.get(kind or "", DEFAULT_URGENCY)


def _finding(kind: str, finding_kind: str | None, size: str | None, detail: str) -> Contradiction:
    score = SEVERITY[kind] * _urgency(finding_kind) * SIZE_FACTOR.get(size, SIZE_FACTOR[None])
    return Contradiction(kind, detail, round(min(1.0, score), 4))


def _size_change(finding_kind: str | None, before: str, after: str, detail: str) -> Contradiction:
    group = GROUPS["size"][0] if before in GROUPS["size"][0] else GROUPS["size"][1]
    # small <-> large is a bigger error than small <-> medium
    step = abs(group.index(after) - group.index(before)) if before in group and after in group else 1
    score = SEVERITY["size"] * _urgency(finding_kind) * (0.8 + 0.2 * step)
    return Contradiction("size", detail, round(min(1.0, score), 4))


def _describe(finding: st.Finding) -> str:
    return " ".join(w for w in (finding.size, finding.side, finding.level, finding.kind) if w)


# ------------------------------------------------------------------------------------------ synthetic


def _synth_report(candidate: str, sample: Mapping[str, Any]) -> list[Contradiction]:
    truth = list(st.case_findings(sample))
    reading = st.read_report(candidate)
    said = list(reading.asserted)
    found: list[Contradiction] = []
    for t in list(truth):  # exact matches first
        if t in said:
            truth.remove(t)
            said.remove(t)
    for t in list(truth):  # the same kind, another side, level or size
        same = [p for p in said if p.kind == t.kind]
        if not same:
            continue
        p = min(same, key=lambda f: (f.side != t.side) + (f.level != t.level))
        truth.remove(t)
        said.remove(p)
        if p.side and t.side and p.side != t.side:
            found.append(_finding("laterality", t.kind, t.size, f"{t.kind}: {p.side} side, case {t.side}"))
        if p.level and t.level and p.level != t.level:
            found.append(_finding("location", t.kind, t.size, f"{t.kind}: {p.level} zone, case {t.level}"))
        if p.size and t.size and p.size != t.size:
            found.append(_size_change(t.kind, t.size, p.size, f"{t.kind}: {p.size}, case {t.size}"))
    for t in list(truth):  # another kind at the same place
        there = [p for p in said if p.side == t.side and p.level == t.level and p.kind not in {f.kind for f in truth}]
        if there and t.kind not in reading.denied:
            truth.remove(t)
            said.remove(there[0])
            found.append(_finding("wrong_kind", t.kind, t.size, f"{there[0].kind} where the case has {_describe(t)}"))
    for t in truth:
        kind = "denied_finding" if t.kind in reading.denied else "omitted_finding"
        found.append(_finding(kind, t.kind, t.size, f"{_describe(t)} {'denied' if kind[0] == 'd' else 'left out'}"))
    for p in said:
        found.append(_finding("invented_finding", p.kind, p.size, f"{_describe(p)} (case: {_case_text(sample)})"))
    # findings outside the suite's vocabulary (the suite draws none of them): cardiomegaly, edema, ...
    synth_observations = set(SYNTH_OBSERVATION.values())
    for observation in sorted(cx.positive_findings(candidate) - cx.positive_findings(str(sample.get("answer", "")))):
        if observation not in synth_observations and observation != "No Finding":
            found.append(_finding("invented_finding", observation, None, f"{observation} (the case has none)"))
    return found


def _case_text(sample: Mapping[str, Any]) -> str:
    findings = st.case_findings(sample)
    return ", ".join(_describe(f) for f in findings) if findings else "normal"


def _synth_closed(said: str, sample: Mapping[str, Any]) -> list[Contradiction]:
    truth = st.case_findings(sample)
    kind, side = st.read_question(str(sample.get("question", "")))
    asked = [f for f in truth if (kind is None or f.kind == kind) and (side is None or f.side == side)]
    if said == "no":  # the case has what was asked
        worst = max(asked or truth or [st.Finding(kind or "")], key=lambda f: _urgency(f.kind) * SIZE_FACTOR[f.size])
        return [_finding("denied_finding", worst.kind or None, worst.size, f"denies the case's {_describe(worst)}")]
    if kind and side and any(f.kind == kind for f in truth):
        other = next(f for f in truth if f.kind == kind)
        return [_finding("laterality", kind, other.size, f"{kind} on the {side}, case: {_describe(other)}")]
    return [_finding("invented_finding", kind, None, f"asserts {kind or 'an abnormality'} (case: {_case_text(sample)})")]


def _synth_open(candidate: str, sample: Mapping[str, Any]) -> list[Contradiction]:
    question = str(sample.get("question", "")).lower()
    truth = st.case_findings(sample)
    asked, _ = st.read_question(question)
    target = next((f for f in truth if asked and f.kind == asked), None)
    if question.startswith("where") and target:
        side, level = st.read_location(candidate)
        found = []
        if side and side != target.side:
            found.append(_finding("laterality", target.kind, target.size, f"{side} side, case {target.side}"))
        if level and level != target.level:
            found.append(_finding("location", target.kind, target.size, f"{level} zone, case {target.level}"))
        return found
    if "size" in question and target:
        size = st.read_size(candidate)
        if size and size != target.size:
            return [_size_change(target.kind, target.size or "medium", size, f"{size}, case {target.size}")]
        return []
    kinds = st.read_kinds(candidate)
    if kinds is None:
        return []
    true_kinds = {f.kind for f in truth}
    missing, extra = true_kinds - kinds, kinds - true_kinds
    by_kind = {f.kind: f for f in truth}
    found = []
    if missing and extra:
        for lost, got in zip(sorted(missing), sorted(extra)):
            found.append(_finding("wrong_kind", lost, by_kind[lost].size, f"{got} instead of {lost}"))
        missing, extra = set(sorted(missing)[len(extra):]), set(sorted(extra)[len(missing):])
    for lost in sorted(missing):
        kind = "denied_finding" if not kinds else "omitted_finding"
        found.append(_finding(kind, lost, by_kind[lost].size, f"{_describe(by_kind[lost])} not named"))
    for got in sorted(extra):
        found.append(_finding("invented_finding", got, None, f"{got} (case: {_case_text(sample)})"))
    return found


# ------------------------------------------------------------------------------------------------ real


def _real_closed(said: str, question: str) -> list[Contradiction]:
    """A flipped yes/no: a denied or invented finding when the question names one (a "normal?" question
    inverts the sense), a wrong modality when it asks about the imaging, else a wrong answer."""
    asked = read_closed_question(question)
    if asked.normal:
        said = "no" if said == "yes" else "yes"  # "is it normal?" -> "no" asserts an abnormality
    observation = asked.finding
    if observation is None:
        kind = "modality" if asked.technique else "wrong_answer"
        return [Contradiction(kind, f"'{said}' to: {question}", SEVERITY[kind])]
    if said == "no":
        return [_finding("denied_finding", observation, None, f"denies {observation} ({question})")]
    return [_finding("invented_finding", observation, None, f"asserts {observation} ({question})")]


def _open(candidate: str, answer: str) -> list[Contradiction]:
    """Open answers against the reference: group swaps, changed numbers, a finding for a normal answer."""
    found = _swaps(terms(answer), terms(candidate), None)
    ref_numbers, cand_numbers = numbers(answer), numbers(candidate)
    if ref_numbers and cand_numbers and sorted(ref_numbers) != sorted(cand_numbers):
        kind = "measurement" if any("." in n for n in ref_numbers) or re.search(r"\d\s*(?:cm|mm)", answer.lower()) \
            else "count"
        found.append(Contradiction(kind, f"{' '.join(cand_numbers)} instead of {' '.join(ref_numbers)}",
                                   SEVERITY[kind]))
    if NORMAL_ANSWER.search(answer.lower()) and not NORMAL_ANSWER.search(candidate.lower()):
        claimed = [t for t, kind, _ in terms(candidate) if kind == "wrong_kind"]
        if claimed:
            found.append(_finding("invented_finding", claimed[0], None, f"{claimed[0]} for a normal answer"))
    return found


def _swaps(before: list[tuple[str, str, int]], after: list[tuple[str, str, int]],
           finding: str | None) -> list[Contradiction]:
    """A term of a group replaced by another of the same group (each group counted once)."""
    found, seen = [], set()
    before_terms, after_terms = {t for t, _, _ in before}, {t for t, _, _ in after}
    for term, kind, index in before:
        if term in after_terms or (kind, index) in seen:
            continue
        new = [t for t, k, i in after if (k, i) == (kind, index) and t not in before_terms]
        if not new:
            continue
        seen.add((kind, index))
        detail = f"{new[0]} instead of {term}"
        if kind == "size":
            found.append(_size_change(finding, term, new[0], detail))
        elif kind in ("wrong_kind",):
            found.append(_finding("wrong_kind", term, None, detail))
        else:
            found.append(Contradiction(kind, detail, round(SEVERITY[kind] * _urgency(finding), 4)))
    return found


def _real_report(candidate: str, answer: str) -> list[Contradiction]:
    ref, cand = cx.label_report(answer), cx.label_report(candidate)
    found = []
    for observation in cx.OBSERVATIONS:
        if observation in ("No Finding", "Support Devices"):
            continue
        before, after = ref[observation], cand[observation]
        if before == cx.POSITIVE and after != cx.POSITIVE:
            kind = "denied_finding" if after == cx.NEGATIVE else "omitted_finding"
            if after == cx.UNCERTAIN:
                continue  # hedging a finding is not a denial
            found.append(_finding(kind, observation, None, f"{observation} {'denied' if after == 0 else 'left out'}"))
        elif after == cx.POSITIVE and before != cx.POSITIVE:
            found.append(_finding("invented_finding", observation, None, f"asserts {observation}"))
    ref_extra, cand_extra = extra_findings(answer), extra_findings(candidate)
    for stem in sorted(ref_extra[0] - cand_extra[0]):
        if stem in cand_extra[1]:
            found.append(_finding("denied_finding", None, None, f"denies {stem}..."))
    for stem in sorted(cand_extra[0] - ref_extra[0]):
        found.append(_finding("invented_finding", None, None, f"asserts {stem}..."))
    found += _sentence_changes(answer, candidate)
    return found


def _sentence_changes(answer: str, candidate: str) -> list[Contradiction]:
    """Side, level, size and number changes inside reference sentences that assert a finding."""
    ref, cand = sentences(answer), sentences(candidate)
    found: list[Contradiction] = []
    matcher = difflib.SequenceMatcher(a=[s.lower() for s in ref], b=[s.lower() for s in cand], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace" or i2 - i1 != j2 - j1:
            continue
        for before, after in zip(ref[i1:i2], cand[j1:j2]):
            observation = asserted_finding(before)
            if observation is None or asserted_finding(after) is None:
                continue
            found += _swaps(terms(before), terms(after), observation)
            ref_numbers, cand_numbers = numbers(before), numbers(after)
            if ref_numbers and cand_numbers and ref_numbers != cand_numbers:
                kind = "measurement" if re.search(r"\d\s*(?:cm|mm)\b|\d\.\d", before.lower()) else "count"
                found.append(Contradiction(kind, f"{' '.join(cand_numbers)} instead of {' '.join(ref_numbers)}",
                                           round(SEVERITY[kind] * _urgency(observation), 4)))
    return found
