"""Does a candidate answer or report contradict its case, and how seriously?

A dispreferred text is only worth training against when it is a real hallucination: it asserts what the
ground truth denies, denies what it asserts, or changes a finding's kind, side, level, size or count. An
edit inside a negated clause ("no pleural effusion" -> "no pleural granuloma") contradicts nothing, and
neither does a paraphrase. :func:`contradictions` lists what a candidate contradicts; an empty list means
it is not a hallucination. :func:`severity` turns that list into the pair's offline clinical-relevance score.

How a candidate is read, by the kind of row (``sample`` is a task row):

- synthetic rows (``lesion_kind``, ``lesion_location``, ``lesion_size`` columns) are read exactly with
  ``harness.tasks.synth_text``: reports against the case's findings (kind, side, level, size), closed
  answers by the question's finding and side, open answers by what they ask (location, size, abnormality);
- real reports with the project's CheXpert-style labeler (``harness.metrics.chexpert_labeler``) against the
  reference report, plus the chest terms the labeler does not know (granuloma, scarring, hernia, ...), plus
  side, level, size and number changes inside sentences that assert a finding;
- real closed (yes/no) answers: a flipped answer is wrong by construction; it is a denied or invented
  finding when the question names one;
- real open answers against the reference: a term swapped for another of its vocabulary group (side,
  level, organ, finding, modality, plane, size), a changed number, or a finding claimed for a normal answer.

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

from harness.metrics import chexpert_labeler as cx
from harness.tasks import synth_text as st

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

# Vocabulary groups for reading open answers and sentence edits: a term swapped for another of its group is
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
# Chest findings the labeler does not read, for real reports (asserted / denied per sentence).
EXTRA_FINDINGS = ("granuloma", "granulomas", "scarring", "scar", "hernia", "emphysema", "calcification",
                  "calcifications", "calcified", "fibrosis", "hyperinflation", "hyperinflated", "scoliosis",
                  "kyphosis", "degenerative", "osteophytes", "spondylosis", "deformity", "eventration")
_EXTRA_RE = re.compile(r"\b(" + "|".join(EXTRA_FINDINGS) + r")\b")
_NEGATION = re.compile(r"\b(?:no|not|without|negative for|free of|absence of|absent|clear of|resolved)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(cm|mm)?(?![\w.]\d)")
_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_YES_NO = {"yes": "yes", "no": "no", "y": "yes", "n": "no", "true": "yes", "false": "no"}
_NORMAL_ANSWER = re.compile(r"\b(?:no abnormalit\w*|normal|unremarkable|none|no finding\w*|negative)\b")


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
    if _normal_text(candidate) == _normal_text(answer):
        return []
    if kind == "report":
        return _synth_report(candidate, sample) if synthetic else _real_report(candidate, answer)
    truth, said = _yes_no(answer), _yes_no(candidate)
    if truth is not None:
        if said is None or said == truth:
            return []
        return _synth_closed(said, sample) if synthetic else _real_closed(said, str(sample.get("question", "")))
    if synthetic:
        return _synth_open(candidate, sample)
    return _open(candidate, answer)


def guess_answer_type(answer: str) -> str:
    """``closed`` for yes/no, ``report`` for a text of several sentences or many words, else ``open``."""
    if _yes_no(answer) is not None:
        return "closed"
    text = str(answer).strip()
    if len(text.split()) >= 8 or len(re.findall(r"[.!?](?:\s|$)", text)) >= 2:
        return "report"
    return "open"


# ------------------------------------------------------------------------------------------- helpers


def _normal_text(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()


def _yes_no(text: str) -> str | None:
    return _YES_NO.get(_normal_text(text))


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


_ASKED_KIND = re.compile(r"\b(nodule|mass|consolidation|effusion|pneumothorax)\b")
_ASKED_SIDE = re.compile(r"\b(right|left)\b")


def _synth_closed(said: str, sample: Mapping[str, Any]) -> list[Contradiction]:
    question = str(sample.get("question", "")).lower()
    truth = st.case_findings(sample)
    kind_match, side_match = _ASKED_KIND.search(question), _ASKED_SIDE.search(question)
    kind = kind_match.group(1) if kind_match else None
    side = side_match.group(1) if side_match else None
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
    match = _ASKED_KIND.search(question)
    target = next((f for f in truth if match and f.kind == match.group(1)), None)
    if question.startswith("where") and target:
        side, level = st.read_location(candidate)
        found = []
        if side and side != target.side:
            found.append(_finding("laterality", target.kind, target.size, f"{side} side, case {target.side}"))
        if level and level != target.level:
            found.append(_finding("location", target.kind, target.size, f"{level} zone, case {target.level}"))
        return found
    if "size" in question and target:
        size = _size_word(candidate)
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


def _size_word(text: str) -> str | None:
    match = re.search(r"\b(small|medium|large)\b", str(text).lower())
    return match.group(1) if match else None


# ------------------------------------------------------------------------------------------------ real


_NORMAL_QUESTION = re.compile(r"\b(?:normal|unremarkable|healthy|intact|symmetric|the same size)\b")
_ABNORMAL_QUESTION = re.compile(
    r"\b(?:abnormal\w*|distended|enlarge\w*|atroph\w*|blunt\w*|fluid|free air|air-fluid|lymphadenopathy|"
    r"thicken\w*|dilat\w*|herniat\w*|shift\w*|calcifi\w*|enhanc\w*|obstruct\w*|stones?|lesions?|"
    r"hyperinten\w*|hypoden\w*|hyperden\w*|hypointen\w*|collapse\w*|perforat\w*)\b")
_TECHNIQUE_QUESTION = re.compile(
    r"\b(?:ct|mri|x-?ray|ultrasound|contrast|t1|t2|flair|dwi|view|plane|axial|coronal|sagittal|image of|"
    r"taken|modality|film|pa|ap|weighted)\b")


def _real_closed(said: str, question: str) -> list[Contradiction]:
    """A flipped yes/no: a denied or invented finding when the question names one (a "normal?" question
    inverts the sense), a wrong modality when it asks about the imaging, else a wrong answer."""
    text = question.lower()
    observation = _question_finding(question)
    if observation is None and _NORMAL_QUESTION.search(text):
        said = "no" if said == "yes" else "yes"  # "is it normal?" -> "no" asserts an abnormality
        observation = "abnormality"
    if observation is None and _ABNORMAL_QUESTION.search(text):
        observation = "abnormality"
    if observation is None:
        kind = "modality" if _TECHNIQUE_QUESTION.search(text) else "wrong_answer"
        return [Contradiction(kind, f"'{said}' to: {question}", SEVERITY[kind])]
    if said == "no":
        return [_finding("denied_finding", observation, None, f"denies {observation} ({question})")]
    return [_finding("invented_finding", observation, None, f"asserts {observation} ({question})")]


def _question_finding(question: str) -> str | None:
    """The finding a question asks about: a labeler observation, a finding term, or None."""
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


_MENTIONS = {o: re.compile(rf"\b(?:{p})\b") for o, p in cx.MENTIONS.items() if o != "Support Devices"}


def _terms(text: str) -> list[tuple[str, str, int]]:
    """(term, group kind, group index) for every vocabulary term of ``text``, in order."""
    out = []
    for word in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)?", str(text).lower()):
        word = PLURALS.get(word, word)
        if word in TERM_GROUP:
            out.append((word, *TERM_GROUP[word]))
    return out


def _numbers(text: str) -> list[str]:
    lowered = str(text).lower()
    found = [m.group(1) for m in _NUMBER.finditer(lowered)]
    found += [str(_NUMBER_WORDS.index(w) + 1) for w in re.findall(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lowered)]
    return found


def _open(candidate: str, answer: str) -> list[Contradiction]:
    """Open answers against the reference: group swaps, changed numbers, a finding for a normal answer."""
    found = _swaps(_terms(answer), _terms(candidate), None)
    ref_numbers, cand_numbers = _numbers(answer), _numbers(candidate)
    if ref_numbers and cand_numbers and sorted(ref_numbers) != sorted(cand_numbers):
        kind = "measurement" if any("." in n for n in ref_numbers) or re.search(r"\d\s*(?:cm|mm)", answer.lower()) \
            else "count"
        found.append(Contradiction(kind, f"{' '.join(cand_numbers)} instead of {' '.join(ref_numbers)}",
                                   SEVERITY[kind]))
    if _NORMAL_ANSWER.search(answer.lower()) and not _NORMAL_ANSWER.search(candidate.lower()):
        claimed = [t for t, kind, _ in _terms(candidate) if kind == "wrong_kind"]
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


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<!\d)[.!?](?!\d)|\n|;", str(text)) if s.strip()]


def _extra_reading(text: str) -> tuple[set[str], set[str]]:
    """Chest findings outside the labeler: (asserted, denied) term stems."""
    asserted, denied = set(), set()
    for sentence in _sentences(text.lower()):
        for match in _EXTRA_RE.finditer(sentence):
            stem = match.group(1)[:6]
            (denied if _NEGATION.search(sentence[:match.start()]) else asserted).add(stem)
    return asserted, denied - asserted


def _asserted_observation(sentence: str) -> str | None:
    """The finding a sentence asserts (a labeler observation or an extra chest term), or None."""
    positives = [m.observation for m in cx.mentions(sentence) if m.label == cx.POSITIVE
                 and m.observation not in ("No Finding", "Support Devices")]
    if positives:
        return positives[0]
    asserted, _ = _extra_reading(sentence)
    return "abnormality" if asserted else None


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
    ref_extra, cand_extra = _extra_reading(answer), _extra_reading(candidate)
    for stem in sorted(ref_extra[0] - cand_extra[0]):
        if stem in cand_extra[1]:
            found.append(_finding("denied_finding", None, None, f"denies {stem}..."))
    for stem in sorted(cand_extra[0] - ref_extra[0]):
        found.append(_finding("invented_finding", None, None, f"asserts {stem}..."))
    found += _sentence_changes(answer, candidate)
    return found


def _sentence_changes(answer: str, candidate: str) -> list[Contradiction]:
    """Side, level, size and number changes inside reference sentences that assert a finding."""
    ref, cand = _sentences(answer), _sentences(candidate)
    found: list[Contradiction] = []
    matcher = difflib.SequenceMatcher(a=[s.lower() for s in ref], b=[s.lower() for s in cand], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace" or i2 - i1 != j2 - j1:
            continue
        for before, after in zip(ref[i1:i2], cand[j1:j2]):
            observation = _asserted_observation(before)
            if observation is None or _asserted_observation(after) is None:
                continue
            found += _swaps(_terms(before), _terms(after), observation)
            ref_numbers, cand_numbers = _numbers(before), _numbers(after)
            if ref_numbers and cand_numbers and ref_numbers != cand_numbers:
                kind = "measurement" if re.search(r"\d\s*(?:cm|mm)\b|\d\.\d", before.lower()) else "count"
                found.append(Contradiction(kind, f"{' '.join(cand_numbers)} instead of {' '.join(ref_numbers)}",
                                           round(SEVERITY[kind] * _urgency(observation), 4)))
    return found
