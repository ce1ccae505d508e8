"""A rule-based labeler for the 14 CheXpert observations, in the spirit of CheXpert / NegBio.

CheXpert (Irvin et al., 2019) extracts mentions of each observation from a report, classifies each
mention as negative, uncertain or positive (NegBio, Peng et al., 2018, uses dependency patterns for
this), and aggregates per report: positive if any mention is positive, else uncertain if any is
uncertain, else negative if any is negative, else blank. "No Finding" is positive when no pathology
(everything except Support Devices) is positive or uncertain.

These rules are our own and simpler: mentions are regular expressions; a mention is classified by the
*nearest* negation or uncertainty cue before it in the same clause (clauses end at sentence ends,
semicolons and contrast words such as "but", "however", "although"), by a cue inside the mention
itself ("heart is not enlarged"), or by a post-cue right after it ("... is not seen", "... cannot be
excluded"). Uncertainty wins over negation when both are nearest-equal ("cannot exclude").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OBSERVATIONS = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
)
POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1

_HEART = r"(?:heart|cardiac silhouette|cardiac shadow|heart size|cardiac size)"
_MEDIASTINUM = r"(?:cardiomediastinal (?:silhouette|contours?)|mediastin(?:um|al (?:silhouette|contours?)))"
_VERB = r"(?:is|are|appears?|remains?|seems?|looks?)"
_DEGREE = r"(?:(?:mildly|moderately|markedly|severely|slightly|minimally|borderline|significantly|somewhat)\s+)?"

MENTIONS: dict[str, str] = {
    "Atelectasis": r"atelecta\w*|(?:lung|lobar|lobe) collapse|collapse of the \w+ (?:lung|lobe)",
    "Cardiomegaly": (
        rf"cardiomegaly|(?:enlarged|enlargement of the) {_HEART}|cardiac enlargement|"
        rf"{_HEART} {_VERB}(?: not)? {_DEGREE}(?:enlarged|increased)"
    ),
    "Consolidation": r"consolidat\w*",
    "Edema": r"edema|oedema|(?:pulmonary )?vascular congestion|fluid overload",
    "Enlarged Cardiomediastinum": (
        rf"(?:enlarged|widened|widening of the) {_MEDIASTINUM}|mediastinal (?:widening|enlargement)|"
        rf"{_MEDIASTINUM} {_VERB}(?: not)? {_DEGREE}(?:enlarged|widened|wide)"
    ),
    "Fracture": r"fractur\w*",
    "Lung Lesion": r"nodul\w*|mass(?:es)?|(?:lung|pulmonary|cavitary) lesions?|tumou?rs?|neoplasm\w*|carcinoma",
    "Lung Opacity": (
        r"opaci\w*|infiltrat\w*|air ?space (?:disease|process)|haziness|hazy|(?:increased|interstitial) "
        r"(?:density|densities|markings)|reticular\w*"
    ),
    "Pleural Effusion": r"(?<!pericardial )effusions?|pleural fluid|(?:blunting|blunted) (?:of )?the costophrenic",
    "Pleural Other": r"pleural (?:thickening|scarring|plaques?|calcifications?)|fibrothorax",
    "Pneumonia": r"pneumonia|pneumonitis|infectio\w*",
    "Pneumothorax": r"pneumothora\w*",
    "Support Devices": (
        r"pacemaker|pacer|picc|catheter|(?:endotracheal|nasogastric|enteric|feeding|chest|tracheostomy|et|ng) "
        r"tubes?|(?:central|venous) (?:venous )?line|(?:sternotomy|sternal) wires?|surgical clips?|stents?|"
        r"port-?a-?cath|(?:support|monitoring|cardiac) devices?|hardware|prosthe\w*|defibrillator|aicd|"
        r"valve replacement"
    ),
}
_MENTION_RE = {obs: re.compile(rf"\b(?:{pattern})\b") for obs, pattern in MENTIONS.items()}

_NEGATION_PRE = re.compile(
    r"\b(?:no|not|without|negative for|free of|absence of|absent|resolution of|resolved|clear of|"
    r"rather than|removed|removal of|nor|neither|never)\b"
)
_UNCERTAIN_PRE = re.compile(
    r"\b(?:may|might|could|possibl[ey]|probabl[ey]|likely|suspicious|suspect(?:ed)?|questionabl[ey]|"
    r"question of|cannot (?:be )?exclude[sd]?|can not (?:be )?exclude[sd]?|cannot (?:be )?rule[sd]? out|"
    r"not (?:be )?excluded|rule out|concern(?:ing)? for|suggest\w*|consider\w*|borderline|equivocal|"
    r"indeterminate|versus|vs|differential|worrisome for|compatible with|consistent with)\b"
)
_NEGATION_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:is|are|was|were|has|have)?\s*(?:not (?:seen|identified|present|visualized|"
    r"demonstrated|evident|appreciated|noted)|absent|resolved|been removed|removed|ruled out)\b"
)
_UNCERTAIN_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:(?:is|are) )?(?:cannot (?:be )?excluded|can not (?:be )?excluded|"
    r"not (?:be )?excluded|(?:is|are) (?:possible|suspected|questioned|likely)|versus|vs|\?)"
)
_CLAUSE_BREAK = re.compile(
    r"\b(?:but|however|although|though|whereas|except|which|otherwise)\b|;|\b(?=there (?:is|are)\b)"
)
_LIST_WORD = re.compile(r"\b(?:or|nor|and)\b")
_ASSERTION = re.compile(
    r"\b(?:mild|mildly|moderate|moderately|severe|small|large|stable|new|increased|decreased|persistent|"
    r"minimal|trace|there|is|are|with|again|chronic|old|healed|residual|bilateral|left|right)\b"
)
_SENTENCE = re.compile(r"(?<!\d)\.(?!\d)|\n|\?")


@dataclass(frozen=True)
class Mention:
    observation: str
    label: int
    text: str


def _in_scope(clause: str, cue_end: int, start: int) -> bool:
    # A cue reaches past a comma into a list ("no consolidation, effusion, or pneumothorax") or a run of
    # modifiers ("no acute, displaced rib fractures"), but not into a new finding that asserts itself
    # ("no pneumothorax, mild cardiomegaly").
    between = clause[cue_end:start]
    if "," not in between or _LIST_WORD.search(clause[cue_end:]):
        return True
    return _ASSERTION.search(between.rsplit(",", 1)[1]) is None


def _classify(clause: str, start: int, end: int) -> int:
    before = clause[:end]  # includes the mention itself: "heart is not enlarged"
    cues = [(m.end(), UNCERTAIN) for m in _UNCERTAIN_PRE.finditer(before)]
    cues += [(m.end(), NEGATIVE) for m in _NEGATION_PRE.finditer(before)]
    cues = [c for c in cues if _in_scope(clause, c[0], start)]
    if cues:
        # Nearest cue (by where it ends) wins: "can not exclude" ends after "not"; on a tie, uncertainty.
        return max(cues, key=lambda c: (c[0], c[1] == UNCERTAIN))[1]
    after = clause[end:]
    if _UNCERTAIN_POST.match(after):
        return UNCERTAIN
    if _NEGATION_POST.match(after):
        return NEGATIVE
    return POSITIVE


def _clauses(text: str):
    for sentence in _SENTENCE.split(text.lower()):
        yield from (c for c in _CLAUSE_BREAK.split(sentence) if c.strip())


def mentions(report: str) -> list[Mention]:
    """Every observation mention in ``report`` with its label (1, 0 or -1)."""
    found = []
    for clause in _clauses(str(report)):
        for obs, pattern in _MENTION_RE.items():
            for m in pattern.finditer(clause):
                found.append(Mention(obs, _classify(clause, m.start(), m.end()), m.group(0)))
    return found


def label_report(report: str) -> dict[str, int | None]:
    """CheXpert-style labels: observation -> 1 (positive), 0 (negative), -1 (uncertain) or None (blank)."""
    labels: dict[str, int | None] = dict.fromkeys(OBSERVATIONS)
    for mention in mentions(report):
        current = labels[mention.observation]
        if current is None or _PRIORITY[mention.label] > _PRIORITY[current]:
            labels[mention.observation] = mention.label
    pathology = [o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices")]
    if not any(labels[o] in (POSITIVE, UNCERTAIN) for o in pathology):
        labels["No Finding"] = POSITIVE
    return labels


_PRIORITY = {POSITIVE: 3, UNCERTAIN: 2, NEGATIVE: 1}


def positive_findings(report: str) -> set[str]:
    return {o for o, v in label_report(report).items() if v == POSITIVE}
