"""The project's one rule-based hallucination injector: verified hallucinations of answers and reports.

POVID, the default DPO text pairs (``harness.curation.textpairs``) and MMedPO's offline ``rules`` generator
(``mmedpo.rules``) need a dispreferred answer that is plausible but *contradicts* the ground truth, made
without a judge LLM. MMedPO asks for "a plausible hallucination" of the ground truth: a wrong finding,
location or laterality, severity or diagnosis (arXiv 2412.06141, Sec. 3.1).

:func:`make_hallucination` proposes edits of the ground truth, in an order drawn from ``seed``, and keeps
the first one that ``harness.curation.factcheck.contradictions`` confirms against the case; after ``tries``
unconfirmed proposals (or none to make) it returns None and the caller skips the item. Edits in place
are tried before appended findings. The edits:

- closed yes/no answers flip (``answer``);
- a report sentence that denies findings ("There is no pleural effusion or pneumothorax.", "The lungs are
  clear.", "The heart size is normal.") becomes one that asserts one of them, with a side, level and size
  ("There is a small left pleural effusion. There is no pneumothorax."; ``negation``);
- a sentence that asserts a finding is denied ("There is no pleural effusion."; ``negation``) or has its
  side, level or size changed (``laterality``, ``location``, ``severity``), its finding swapped for another
  that fits the same place and grammar (``finding``: a nodule for a mass; an effusion is never moved to the
  apex), or its count or measurement changed (``count``);
- a report with nothing to edit gets a finding it does not mention (``append``);
- open answers swap a term for another of its group (side, level, organ, finding, modality, plane, size),
  change a number, or name a finding where the answer is "no abnormality".

Only chest vocabulary goes into reports (the suite and IU-Xray / MIMIC-CXR are chest films); words inside a
negated clause are never swapped for others that leave the clause true. The same ``(sample, seed)`` always
gives the same result.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.curation.factcheck import Contradiction, contradictions, severity
from harness.findings import labeler as cx
from harness.findings import synthetic as st
from harness.findings.answers import GROUPS, NUMBER_WORDS, PLURALS, TERM_GROUP, guess_answer_type

# Every category an edit can have (the kind of change made; what it contradicts is in the Contradiction).
CATEGORIES = ("answer", "negation", "finding", "laterality", "location", "severity", "count", "modality",
              "append")
# Open-answer vocabulary group -> the edit category of a swap inside it.
GROUP_CATEGORY = {"laterality": "laterality", "location": "location", "organ": "location", "appearance": "severity",
                  "wrong_kind": "finding", "modality": "modality", "size": "severity"}
CLOSED_FLIP = {"yes": "no", "no": "yes"}
CANONICAL = {"ct": "CT", "mri": "MRI", "x-ray": "X-ray", "t1": "T1", "t2": "T2", "flair": "FLAIR", "pa": "PA",
             "ap": "AP", "dwi": "DWI"}

SIDES, LEVELS, SIZES = st.SIDES, st.LEVELS, st.SIZES
# Where the suite draws each kind (effusions at the bases, pneumothoraces at the apices).
ALLOWED_LEVELS = st.ALLOWED_LEVELS
PARENCHYMAL = st.PARENCHYMAL
# Real-report findings, by labeler observation: the sentence that asserts one (filled with side / level / size).
REAL_TEMPLATES = {
    "Pleural Effusion": "There is a {size} {side} pleural effusion.",
    "Pneumothorax": "There is a {size} {side} apical pneumothorax.",
    "Consolidation": "There is focal consolidation in the {side} {level} lobe.",
    "Lung Lesion": "There is a {mm} mm nodule in the {side} {level} lobe.",
    "Lung Opacity": "There is patchy airspace opacity in the {side} {level} lobe.",
    "Atelectasis": "There is {side} basilar atelectasis.",
    "Pneumonia": "There is {side} {level} lobe pneumonia.",
    "Edema": "There is mild interstitial pulmonary edema.",
    "Cardiomegaly": "The heart is mildly enlarged.",
    "Enlarged Cardiomediastinum": "The mediastinum is widened.",
    "Fracture": "There is an acute fracture of the {side} clavicle.",
    "Pleural Other": "There is {side} pleural thickening.",
}
SYNTH_OF_OBSERVATION = {"Lung Lesion": ("nodule", "mass"), "Consolidation": ("consolidation",),
                        "Pleural Effusion": ("effusion",), "Pneumothorax": ("pneumothorax",)}
# Real-report finding words that swap for one another in place (same grammar, same part of the chest).
REAL_KIND_SWAPS = (("nodule", "mass", "granuloma"), ("atelectasis", "consolidation", "edema"),
                   ("effusion", "thickening"))
_SIZE_SWAPS = (("small", "moderate", "large"), ("mild", "moderate", "severe"), ("minimal", "extensive"))
_SIDE_SWAP = {"left": "right", "right": "left"}
_LEVEL_SWAP = {"upper": "lower", "lower": "upper", "apical": "basilar", "basilar": "apical", "apex": "base",
               "base": "apex", "bases": "apices", "apices": "bases"}
_CLEAR = re.compile(r"\blungs? (?:are|is) (?:otherwise )?clear\b|\bclear lungs?\b")
_HEART_NORMAL = re.compile(r"\b(?:heart|cardiac)\b.*\b(?:normal|within normal limits|not enlarged|unremarkable)\b"
                           r"|\bnormal (?:heart|cardiac)")
_SENTENCE = re.compile(r"[^.!?\n]*?(?:(?<!\d)[.!?]+(?!\d)|\n|$)")
_NUMBER = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")(?![\w-]|\.\d)", re.IGNORECASE)
_GENERIC_NORMAL = re.compile(r"\b(?:no (?:acute )?(?:abnormalit(?:y|ies)|findings?)|normal|none|unremarkable)\b",
                             re.IGNORECASE)


@dataclass(frozen=True)
class Edit:
    """One change the injector made: its category (one of :data:`CATEGORIES`) and the text swapped."""

    category: str
    before: str
    after: str


@dataclass(frozen=True)
class Hallucination:
    """A verified hallucination: its text, the edits that made it and what it contradicts in the case."""

    text: str
    edits: list[Edit] = field(default_factory=list)
    contradictions: list[Contradiction] = field(default_factory=list)

    @property
    def severity(self) -> float:
        """The offline clinical-relevance raw score (``harness.curation.factcheck.severity``)."""
        return severity(self.contradictions)


def make_hallucination(sample: Mapping[str, Any], *, seed: int, tries: int = 8) -> Hallucination | None:
    """A hallucination of ``sample['answer']`` that contradicts the case, or None when none can be made.

    ``sample`` is a task row (``answer``, ``answer_type``, ``question``; synthetic rows also the lesion
    columns). Up to ``tries`` distinct proposals, in an order drawn from ``seed``, are checked with
    ``harness.curation.factcheck.contradictions``; the first that contradicts something is returned.
    """
    answer = str(sample.get("answer", "")).strip()
    kind = str(sample.get("answer_type", "")).strip().lower() or guess_answer_type(answer)
    rng = random.Random(f"{seed}:{answer}")
    proposals = list(_proposals(answer, kind, sample, rng))
    rng.shuffle(proposals)
    # edits in place first; a finding appended to a report only when no edit in place is confirmed
    proposals.sort(key=lambda p: p[1][0].category == "append")
    seen: set[str] = set()
    for text, edits in proposals:
        text = _tidy(text)
        if text.lower() == answer.lower() or not text or text in seen:
            continue
        seen.add(text)
        found = contradictions(text, {**sample, "answer": answer, "answer_type": kind})
        if found:
            return Hallucination(text, edits, found)
        if len(seen) >= tries:
            break
    return None


def make_denial(sample: Mapping[str, Any], *, seed: int, tries: int = 8) -> Hallucination | None:
    """A hallucination of ``sample['answer']`` whose error type is a denial of a present finding
    (``harness.curation.errortypes.classify``), or None when the case has nothing to deny or no edit is confirmed.

    Proposals, in order: on a synthetic report, the suite's normal report ("The heart size is normal. The
    lungs are clear. There is no pleural effusion or pneumothorax.": the text prior's denial, the base
    model's commonest error); on a synthetic "what abnormality" answer, "no abnormality"; then the
    injector's own denying edits (a "yes" flipped to "no", an asserted finding denied), in an order drawn
    from ``seed``. The denial floor of the pair builders uses it (docs/hallucinations.md).
    """
    from harness.curation.errortypes import classify

    answer = str(sample.get("answer", "")).strip()
    kind = str(sample.get("answer_type", "")).strip().lower() or guess_answer_type(answer)
    case = {**sample, "answer": answer, "answer_type": kind}
    rng = random.Random(f"{seed}:{answer}:denial")
    first: list[tuple[str, list[Edit]]] = []
    if _is_synthetic(sample) and kind == "report":
        first.append((st.NORMAL_REPORT, [Edit("negation", answer, st.NORMAL_REPORT)]))
    elif _is_synthetic(sample) and st.read_kinds(answer):
        first.append(("no abnormality", [Edit("negation", answer, "no abnormality")]))
    rest = [p for p in _proposals(answer, kind, case, rng) if p[1][0].category in ("answer", "negation")]
    rng.shuffle(rest)
    seen: set[str] = set()
    for text, edits in first + rest:
        text = _tidy(text)
        if text.lower() == answer.lower() or not text or text in seen:
            continue
        seen.add(text)
        reading = classify(text, case)
        if reading.primary == "denial":
            return Hallucination(text, edits, list(reading.contradictions))
        if len(seen) >= tries:
            break
    return None


def hallucinate(answer: str, *, seed: int, question: str = "") -> str:
    """A plausible answer that contradicts ``answer`` (the text of :func:`hallucinate_with_edits`)."""
    return hallucinate_with_edits(answer, seed=seed, question=question)[0]


def hallucinate_with_edits(answer: str, *, seed: int, question: str = "",
                           max_edits: int = 1) -> tuple[str, list[Edit]]:
    """``(text, edits)`` for callers that have only the answer and cannot skip an item.

    The answer type is guessed (yes/no -> closed, several sentences -> report, else open) and
    :func:`make_hallucination` is asked; when it finds nothing verifiable, a finding sentence is appended
    (``append``), so the text always differs from ``answer``. Callers with the task row should call
    :func:`make_hallucination` and skip the items it returns None for. ``max_edits`` is accepted for
    compatibility; every hallucination is one edit.
    """
    text = str(answer)
    sample = {"answer": text, "question": question, "answer_type": guess_answer_type(text)}
    made = make_hallucination(sample, seed=seed)
    if made is not None:
        return made.text, made.edits
    rng = random.Random(f"{seed}:{text}:append")
    sentence = _real_sentence(rng.choice(sorted(REAL_TEMPLATES)), rng)
    joined = f"{text.rstrip()} {sentence}".strip() if text.strip() else sentence
    return joined, [Edit("append", "", sentence)]


def category_of(term: str) -> str | None:
    """The edit category a swap of ``term`` would have, or None when it is not clinical vocabulary."""
    term = term.lower()
    if term in ("no", "not", "without", "normal", "absent", "negative", "clear", "unremarkable"):
        return "negation"
    if _NUMBER.fullmatch(term):
        return "count"
    entry = TERM_GROUP.get(term)
    return GROUP_CATEGORY[entry[0]] if entry else None


# ----------------------------------------------------------------------------------------- proposals


def _proposals(answer: str, kind: str, sample: Mapping[str, Any], rng: random.Random) -> Iterator[tuple[str, list[Edit]]]:
    closed = answer.rstrip(".!").strip()
    if closed.lower() in CLOSED_FLIP:
        flipped = _match_case(closed, CLOSED_FLIP[closed.lower()]) + answer[len(closed):]
        yield flipped, [Edit("answer", answer, flipped)]
        return
    if kind == "report":
        yield from _report_proposals(answer, _is_synthetic(sample), rng)
    else:
        yield from _open_proposals(answer, _is_synthetic(sample), rng)


def _is_synthetic(sample: Mapping[str, Any]) -> bool:
    return sample.get("lesion_kind") is not None and "lesion_kind" in sample


def _open_proposals(answer: str, synthetic: bool, rng: random.Random) -> Iterator[tuple[str, list[Edit]]]:
    for match in re.finditer(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?", answer):
        word = match.group(0)
        singular = PLURALS.get(word.lower(), word.lower())
        entry = TERM_GROUP.get(singular)
        if entry is None or (synthetic and entry[0] not in ("laterality", "location", "size", "wrong_kind")):
            continue  # the suite's answers name only lesions, sides, zones and sizes of the lungs
        group = GROUPS[entry[0]][entry[1]]
        if synthetic and entry[0] == "wrong_kind":
            group = st.KINDS
        plural = {v: k for k, v in PLURALS.items()}
        is_plural = singular != word.lower()
        for other in group:
            if other != singular and (other in plural or not is_plural):  # plurals only to countable words
                after = _match_case(word, plural[other] if is_plural else other)
                yield _replace(answer, match, after), [Edit(GROUP_CATEGORY[entry[0]], word, after)]
    for match in _NUMBER.finditer(answer):
        bare = answer.strip().rstrip(".").lower() == match.group(1).lower()
        for other in _other_numbers(match.group(1), bare=bare):
            yield _replace(answer, match, other), [Edit("count", match.group(1), other)]
    normal = _GENERIC_NORMAL.search(answer)
    if normal:
        for finding in (st.KINDS if synthetic else ("mass", "nodule", "effusion", "fracture", "hemorrhage")):
            after = _match_case(normal.group(0), finding)
            yield _replace(answer, normal, after), [Edit("negation", normal.group(0), after)]


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def _report_proposals(answer: str, synthetic: bool, rng: random.Random) -> Iterator[tuple[str, list[Edit]]]:
    mentioned = {m.observation for m in cx.mentions(answer)}
    for start, end in _sentence_spans(answer):
        sentence = answer[start:end]
        body = sentence.strip()
        lead = sentence[:len(sentence) - len(sentence.lstrip())]
        trail = sentence[len(sentence.rstrip()):] or (" " if end < len(answer) and not answer[end].isspace() else "")
        for new, category in _sentence_edits(body, synthetic, rng):
            yield answer[:start] + lead + new + trail + answer[end:], [Edit(category, body, new)]
    # a finding the report does not mention at all, appended
    for observation in sorted(set(SYNTH_OF_OBSERVATION if synthetic else REAL_TEMPLATES) - mentioned):
        sentence = (_synth_sentence(rng.choice(SYNTH_OF_OBSERVATION[observation]), rng) if synthetic
                    else _real_sentence(observation, rng))
        yield f"{answer.rstrip()} {sentence}", [Edit("append", "", sentence)]


def _sentence_edits(body: str, synthetic: bool, rng: random.Random) -> Iterator[tuple[str, str]]:
    lower = body.lower()
    found = cx.mentions(body)
    denied = [m for m in found if m.label == cx.NEGATIVE and m.observation not in ("No Finding", "Support Devices")]
    asserted = [m for m in found if m.label == cx.POSITIVE and m.observation not in ("No Finding", "Support Devices")]
    # a sentence that denies findings -> one asserts one of them (the rest stay denied)
    for mention in denied:
        rest = list(dict.fromkeys(m.text for m in denied if m.observation != mention.observation))
        tail = f" There is no {' or '.join(rest)}." if rest else ""
        if synthetic:
            for kind in SYNTH_OF_OBSERVATION.get(mention.observation, ()):
                rest = [_synth_name(k) for k in _negated_kinds(body) if k != kind]
                tail = f" There is no {' or '.join(rest)}." if rest else ""
                yield _synth_sentence(kind, rng) + tail, "negation"
        elif mention.observation in REAL_TEMPLATES:
            yield _real_sentence(mention.observation, rng) + tail, "negation"
    if _CLEAR.search(lower) and not asserted:
        if synthetic:
            for kind in PARENCHYMAL:
                yield _synth_sentence(kind, rng), "negation"
        else:
            for observation in ("Lung Lesion", "Consolidation", "Lung Opacity", "Atelectasis"):
                yield _real_sentence(observation, rng), "negation"
    if not synthetic and _HEART_NORMAL.search(lower) and not asserted and not denied:
        yield REAL_TEMPLATES["Cardiomegaly"], "negation"
    if not asserted:
        return
    if synthetic:
        yield from _synth_finding_edits(body, rng)
        return
    yield from _real_finding_edits(body, asserted)


def _negated_kinds(body: str) -> list[str]:
    reading = st.read_report(body)
    return [k for k in st.KINDS if k in reading.denied]


def _synth_finding_edits(body: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    reading = st.read_report(body)
    for finding in reading.asserted:
        kind, side, level, size = finding.kind, finding.side or "right", finding.level or "upper", finding.size
        size = size or "medium"
        yield f"There is no {_synth_name(kind)}.", "negation"
        yield _synth_sentence(kind, rng, side=_SIDE_SWAP[side], level=level, size=size), "laterality"
        if kind not in ALLOWED_LEVELS:
            yield _synth_sentence(kind, rng, side=side, level=_LEVEL_SWAP[level], size=size), "location"
        for other in SIZES:
            if other != size:
                yield _synth_sentence(kind, rng, side=side, level=level, size=other), "severity"
        for other in st.KINDS:
            if other != kind and level in ALLOWED_LEVELS.get(other, LEVELS):
                yield _synth_sentence(other, rng, side=side, level=level, size=size), "finding"


def _real_finding_edits(body: str, asserted: list) -> Iterator[tuple[str, str]]:
    mention = asserted[0]
    yield f"There is no {mention.text}.", "negation"
    for pattern, table, category in ((r"\b(left|right)\b", _SIDE_SWAP, "laterality"),
                                     (r"\b(upper|lower|apical|basilar|apex|base|bases|apices)\b", _LEVEL_SWAP,
                                      "location")):
        match = re.search(pattern, body, re.IGNORECASE)
        if match:
            yield _replace(body, match, _match_case(match.group(1), table[match.group(1).lower()])), category
    for groups, category in ((_SIZE_SWAPS, "severity"), (REAL_KIND_SWAPS, "finding")):
        for group in groups:
            match = re.search(r"\b(" + "|".join(group) + r")\b", body, re.IGNORECASE)
            if match:
                for other in group:
                    if other != match.group(1).lower():
                        yield _replace(body, match, _match_case(match.group(1), other)), category
    for match in _NUMBER.finditer(body):
        for other in _other_numbers(match.group(1), bare=False):
            yield _replace(body, match, other), "count"


def _synth_name(kind: str) -> str:
    return "pleural effusion" if kind == "effusion" else kind


def _synth_sentence(kind: str, rng: random.Random, *, side: str | None = None, level: str | None = None,
                    size: str | None = None) -> str:
    """A sentence in the suite's own words (``harness.findings.synthetic.finding_sentence``) asserting one
    finding; the side, level and size not given are drawn."""
    side = side or rng.choice(SIDES)
    level = level if level in ALLOWED_LEVELS.get(kind, LEVELS) else rng.choice(ALLOWED_LEVELS.get(kind, LEVELS))
    size = size or rng.choice(SIZES)
    return st.finding_sentence(kind, side, level, size)


def _real_sentence(observation: str, rng: random.Random) -> str:
    return REAL_TEMPLATES[observation].format(side=rng.choice(SIDES), level=rng.choice(LEVELS),
                                              size=rng.choice(("small", "moderate", "large")),
                                              mm=rng.choice((6, 9, 12, 15, 22)))


# -------------------------------------------------------------------------------------------- helpers


def _replace(text: str, match: re.Match, after: str) -> str:
    group = 1 if match.re.groups else 0
    return text[:match.start(group)] + after + text[match.end(group):]


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return re.sub(r"\b([Aa]) ([aeiouAEIOU])", r"\1n \2", text)  # "a opacity" -> "an opacity"


def _other_numbers(term: str, *, bare: bool) -> tuple[str, ...]:
    """Plausible wrong values for a count or measurement: n-1, n+1, n+2 (words stay words, 1..10);
    decimals scaled by 0.5, 1.5 and 2 with the same number of decimals. Inside a sentence a count stays
    plural (2 or more: "two lesions" never becomes "one lesions"); a bare answer ("2", "one") takes any."""
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


def _match_case(template: str, word: str) -> str:
    if word in CANONICAL:
        return CANONICAL[word]
    if template.isupper() and len(template) > 4:  # a shouted word, not an abbreviation
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
