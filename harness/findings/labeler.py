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

Refinements, each checked against the hand-labelled IU-Xray sentences in
``tests/data/labeler_validation`` (rules in its RULES.md; ``scripts/validate_labeler.py`` scores them):

- Heart and mediastinum *size statements* ("heart size is normal", "the heart is slightly large", "heart
  size upper limits of normal", "normal cardiomediastinal silhouette", "heart and mediastinum normal") label
  Cardiomegaly / Enlarged Cardiomediastinum negative, positive or uncertain from their state word; a
  subject called only "stable" gets no label (:func:`_size_mentions`).
- A hedge inside a negation's scope is negated: "no focal consolidation to suggest pneumonia", "no
  suspicious pulmonary opacity" are negative, not uncertain.
- Findings offered as alternatives are uncertain ("atelectasis or pneumonia"), unless each is a name for an
  opacity that is seen ("atelectasis or scarring", "scarring/atelectasis", "atelectasis versus scarring"):
  those are positive, as IU-Xray's MeSH indexers file them (issue 26).
- "consistent with" / "compatible with" state a conclusion (positive); "no (significant) change in" and
  "no progression of" do not negate; "... have cleared / has resolved" does.
- Costophrenic blunting alone is not an effusion mention (CheXpert lists it among other findings);
  parenchymal scarring and interstitial markings / changes / disease are Lung Opacity, pleural scarring is
  Pleural Other; "evaluation for X is limited" / "limits evaluation for X" say nothing about X.
- Report-level rules from 150 whole IU-Xray reports (the tuning part of ``iu_xray_reports.jsonl``; a held-out
  150 score them, see docs/metrics.md): "nodular opacity / density" is Lung Opacity, not Lung Lesion; "vascular
  prominence", increased / prominent pulmonary vascularity and "early failure" are Edema; "neoplastic", "cavity",
  post-traumatic rib deformities, closure devices, ports and stimulators are read; a nodule "not seen on prior
  exams" is new, not absent; a density counts as an opacity only where the report puts it in the lung, and an
  opacity the report explains as a hiatal hernia, fat or a skin fold is dropped.
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
# Bump when a rule change can change labels, so scores from two versions are not mixed: it is the CheXpert
# metrics' version (harness.metrics.clinical), which keys evaluations; bump the report tasks' versions with it.
# 2: the issue-26 report-level rules (nodular opacity, alternatives, vascular prominence, ...).
LABELER_VERSION = "2"

_HEART = r"(?:heart|cardiac silhouette|cardiac shadow|heart size|cardiac size)"
_MEDIASTINUM = r"(?:cardiomediastinal (?:silhouette|contours?)|mediastin(?:um|al (?:silhouette|contours?)))"
_SCAR = r"scar(?:s|ring|red)?"
_VESSELS = r"(?:(?:central|pulmonary|lung) )*(?:vasculature|vascularity|vascular markings)"

MENTIONS: dict[str, str] = {
    "Atelectasis": r"atelecta\w*|collapse",
    "Cardiomegaly": rf"cardiomegaly|(?:enlarged|enlargement of the) {_HEART}|cardiac enlargement",
    "Consolidation": r"consolidat\w*",
    # Vascular congestion / prominence is how IU-Xray's readers (and its MeSH indexers) report early edema:
    # "Central vascular prominence and diffuse bilateral interstitial and alveolar opacities.", "Mild central
    # vascular prominence.", "Pulmonary vasculature is increased with mildly increased interstitial markings",
    # "Central vascular markings are mildly prominent." Prominent pulmonary *arteries* (hypertension) are not.
    "Edema": (
        r"edema|oedema|(?:pulmonary )?(?:vascular|venous) congestion|fluid overload|"
        r"(?:early|mild|congestive) (?:heart |cardiac )?failure|"
        r"(?:central |pulmonary )?vascular (?:prominence|engorgement)|"
        rf"(?:increased|prominent|prominence of the) {_VESSELS}|{_VESSELS} (?:is|are|appears?) (?:\w+ ){{0,2}}?"
        r"(?:increased|prominent)"
    ),
    "Enlarged Cardiomediastinum": (
        rf"(?:enlarged|widened|widening of the) {_MEDIASTINUM}|mediastinal (?:widening|enlargement)"
    ),
    # "There are posttraumatic deformities of the right posterior ribs." (healed fractures)
    "Fracture": r"fractur\w*|post-?traumatic deformit\w*",
    "Lung Lesion": (
        # "neoplastic" as well as "neoplasm"; "The cavity and the left upper lobe has decreased in size."
        r"nodules?|mass(?:es)?|(?:lung|pulmonary|cavitary) lesions?|cavit(?:y|ies)|tumou?rs?|neoplas\w*|carcinoma"
    ),
    "Lung Opacity": (
        rf"opaci\w*|infiltrat\w*|air ?space (?:disease|process|opacit\w*)|haziness|hazy|(?:increased|interstitial) "
        r"(?:density|densities)|interstitial (?:lung )?(?:markings|changes|disease|prominence|pattern)|reticular\w*|"
        rf"{_SCAR}|"
        # "nodular opacity / density" is an opacity, as IU-Xray's indexers file it ("There is a XXXX 7 XXXX nodular
        # density at the left lung base."); a density placed in the lung ("XXXX density is seen within the right
        # lower lobe XXXX representing hemorrhage") is one too (see _reassign for the others)
        r"nodular (?:like )?densit(?:y|ies)|densit(?:y|ies)"
    ),
    "Pleural Effusion": r"(?<!pericardial )effusions?|pleural fluid",
    "Pleural Other": (
        r"pleural (?:thickening|scarring|plaques?|calcifications?)|fibrothorax|pleural[- ]parenchymal|"
        r"pleuro-?parenchymal"
    ),
    "Pneumonia": r"pneumonia|pneumonitis|infectio\w*",
    "Pneumothorax": r"pneumothora\w*|deep sulcus sign",
    "Support Devices": (
        r"pacemaker|pacer|picc|catheter|(?:endotracheal|nasogastric|enteric|feeding|chest|tracheostomy|et|ng) "
        r"tubes?|(?:central|venous) (?:venous )?line|(?:sternotomy|sternal) wires?|sternotomy|stents?|"
        r"port-?a-?cath|(?:support|monitoring|cardiac) devices?|hardware|prosthe\w*|defibrillator|aicd|"
        r"valve replacement|generator|leads(?! to)|tips? (?:\w+ ){0,3}(?:svc|atri\w+|cavoatrial|caval)|"
        # "There is a stable closure device projected over the heart.", "Left XXXX-a-XXXX is in XXXX." (a port),
        # "spinal stimulator is in XXXX with tip overlying the T9 vertebral body."
        r"closure devices?|xxxx-a-xxxx|stimulators?|ivc filters?"
    ),
}
_MENTION_RE = {obs: re.compile(rf"\b(?:{pattern})\b") for obs, pattern in MENTIONS.items()}

_NEGATION_PRE = re.compile(
    r"\b(?:no(?! (?:significant |interval |appreciable |definite )?(?:change|progression))|not|without|"
    r"negative for|free of|absence of|absent|resolution of|resolved|clear of|rather than|removed|removal of|"
    r"nor|neither|never)\b"
)
_UNCERTAIN_PRE = re.compile(
    r"\b(?:may|might|could|possibl[ey]|probabl[ey]|likely|suspicious|suspect(?:ed)?|questionabl[ey]|"
    r"question of|cannot (?:\w+ )?(?:be )?(?:\w+ )?exclude[sd]?|can not (?:be )?exclude[sd]?|"
    r"cannot (?:be )?rule[sd]? out|not (?:be )?excluded|rule out|concern(?:ing)? for|suggest\w*|consider\w*|"
    r"borderline|equivocal|(?<!age-)(?<!age )indeterminate|versus|vs|differential|worrisome for|correlat\w* for)\b"
)
_NEGATION_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:is|are|was|were|has|have)?\s*(?:not (?:seen|identified|present|visualized|"
    r"demonstrated|evident|appreciated|noted)|absent|resolved|been removed|removed|ruled out|cleared)\b"
    # "There is a 9 mm right lower lobe pulmonary nodule, not seen on prior exams." says it is new
    r"(?! (?:on|in) (?:the |any )?(?:prior|previous|earlier|comparison|old)\b)"
)
_UNCERTAIN_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:(?:is|are) )?(?:cannot (?:\w+ )?(?:be )?(?:\w+ )?excluded|can not (?:be )?excluded|"
    r"not (?:be )?excluded|(?:is|are) (?:possible|suspected|questioned|likely)|versus|vs|\?)"
)
# A clause whose predicate says its findings are gone: "consolidation and atelectasis have cleared".
_GONE = re.compile(r"\b(?:has|have) (?:\w+ )?(?:cleared|resolved)\b")
# "evaluation for pneumothorax is limited" states a limitation, not a finding.
_LIMITED = re.compile(
    r"\b(?:evaluation|assessment) (?:of|for) .*\b(?:is|are) (?:\w+ )?limited\b|"
    # "The XXXX of lateral view and limits evaluation for an effusion or the patellofemoral joint space."
    r"\blimit(?:s|ed|ing)? (?:the )?(?:evaluation|assessment) (?:of|for)\b.*"
)
# Findings offered as alternatives: the text between two mentions.
# Findings that, offered as alternatives to each other, still say an opacity is there: each reading names it.
# "There is scarring or subsegmental atelectasis at the right lung base.", "XXXX opacities in the right lower
# lung representing atelectasis versus scarring." (IU-Xray's indexers file both as Atelectasis.) An alternative
# with anything else ("atelectasis or pneumonia", "nodule versus vessel") stays uncertain.
_SEEN_ALTERNATIVES = frozenset({"Atelectasis", "Lung Opacity", "Consolidation"})
_ALTERNATIVE_GAP = re.compile(r"^\s*(?:or|and/or|versus|vs\.?|/)\s*(?:\w+\s+){0,2}$")
_CLAUSE_BREAK = re.compile(
    r"\b(?:but|however|although|though|whereas|except|which|otherwise)\b|;|\b(?=there (?:is|are)\b)"
)
_LIST_WORD = re.compile(r"\b(?:or|nor|and)\b")
_ASSERTION = re.compile(
    r"\b(?:mild|mildly|moderate|moderately|severe|small|large|stable|new|increased|decreased|persistent|"
    r"minimal|trace|there|is|are|with|again|chronic|old|healed|residual|bilateral|left|right)\b"
)
# Where a "density" is a lung opacity, and what explains an opacity away (see _reassign).
_LUNG_PLACE = re.compile(r"\b(?:lobes?|lungs?|lingula\w*|midlung|(?:lung )?bases?|basilar|bibasilar|perihilar|"
                         r"retrocardiac|apex|apices|apical|parenchym\w*)\b")
_EXPLAINED = re.compile(
    r"^[^.]*?\b(?:(?<!there )is|(?<!there )are|reflects?|represents?|representing|related to|due to|compatible(?: with)?)\s+"
    r"(?:xxxx\s+)*(?:an?\s+)?(?:(?:small|large|moderate)\s+)?(?:hiatal hernia|(?:subpleural|pericardial|epicardial) fat|"
    r"skin folds?)"
)
_SENTENCE = re.compile(r"(?<!\d)\.(?!\d)|\n|\?")

# Size statements about the heart and the mediastinum (see _size_mentions).
_SIZE_SUBJECT = re.compile(
    r"\b(?:(?P<both>cardiac and mediastinal (?:contours?|silhouettes?))|"
    r"(?P<ec>cardio ?mediastinal (?:silhouette|contours?)|mediastin(?:um|al (?:silhouette|contours?)))|"
    r"(?P<cm>heart(?: size)?|cardiac (?:silhouette|size|contours?|shadow)))\b"
)
_SIZE_STATES = (  # the first state word in the text names the state; on a tie, this order
    ("borderline", re.compile(r"\b(?:upper limits?(?: of)? normal|borderline|top (?:of )?normal)\b")),
    ("normal", re.compile(r"\b(?:normal|within (?:the )?normal limits|unremarkable|not (?:significantly )?"
                          r"(?:enlarged|widened|large))\b")),
    # "There has been interval increase in size of the cardiac silhouette from XXXX."
    ("enlarged", re.compile(r"\b(?:enlarged|enlargement|large|widened|wide|increased|prominen\w*|"
                            r"increase in (?:\w+ )?size)\b")),
    ("stable", re.compile(r"\b(?:stable|unchanged)\b")),
)
_SIZE_LABEL = {"normal": NEGATIVE, "enlarged": POSITIVE, "borderline": UNCERTAIN}
_SIZE_OBS = {"cm": ("Cardiomegaly",), "ec": ("Enlarged Cardiomediastinum",),
             "both": ("Cardiomegaly", "Enlarged Cardiomediastinum")}


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
    uncertain = [(m.start(), m.end()) for m in _UNCERTAIN_PRE.finditer(before)]
    negations = [(m.start(), m.end()) for m in _NEGATION_PRE.finditer(before)
                 if not any(u0 <= m.start() < u1 for u0, u1 in uncertain)]  # "not" inside "can not exclude"
    cues = [(e, UNCERTAIN, b) for b, e in uncertain] + [(e, NEGATIVE, b) for b, e in negations]
    cues = [c for c in cues if _in_scope(clause, c[0], start)]
    if cues:
        # Nearest cue (by where it ends) wins: "can not exclude" ends after "not"; on a tie, uncertainty.
        end_at, label, begin = max(cues, key=lambda c: (c[0], c[1] == UNCERTAIN))
        if label == UNCERTAIN and any(c[1] == NEGATIVE and c[0] <= begin for c in cues):
            return NEGATIVE  # a negated hedge: "no consolidation to suggest pneumonia", "no suspicious opacity"
        return label
    after = clause[end:]
    if _UNCERTAIN_POST.match(after):
        return UNCERTAIN
    if _NEGATION_POST.match(after) or _GONE.search(after):
        return NEGATIVE
    return POSITIVE


def _clauses(text: str):
    """(clause, the rest of its sentence) pairs."""
    for sentence in _SENTENCE.split(text.lower()):
        pos = 0
        for clause in _CLAUSE_BREAK.split(sentence):
            pos = sentence.find(clause, pos) + len(clause)
            if clause.strip():
                yield clause, sentence[pos:]


def _reassign(obs: str, clause: str, m: re.Match, rest: str = "") -> str | None:
    """The observation a raw match stands for in context (``rest``: the sentence after the clause), or None to
    drop it."""
    before = clause[max(0, m.start() - 40):m.start()]
    words_before = before.split()[-3:]
    if obs == "Lung Opacity":
        if re.search(r"\b(?:bony|osseous)\s+$", before):
            return None  # "bony opacity" is not in the lung
        if m.group(0).startswith("densit") and (
            re.search(r"\b(?:calcifi\w*|bony|osseous|bone|soft tissue|pleural(?:[- ]based)?|low|curvilinear)\s+"
                      r"(?:\w+\s+)?$", before)
            or not _LUNG_PLACE.search(clause[max(0, m.start() - 40):m.end() + 60])
        ):
            return None  # a density is an opacity only where the report puts it in the lung, and not calcified
        if _EXPLAINED.search(clause[m.end():] + " " + rest):
            # "There is opacity at the base of the mediastinum which is XXXX a hiatal hernia.", "There is an
            # retrocardiac density compatible hiatal hernia.", "pleural based density in the right lung base,
            # XXXX related to subpleural fat": the report names what casts it, outside the lung
            return None
        if m.group(0).startswith("scar") and any("pleur" in w for w in words_before):
            return "Pleural Other"  # "pleural thickening and scarring", "pleural-parenchymal scarring"
    if obs == "Pneumonia" and m.group(0).startswith("infectio") and re.search(
        r"\b(?:granulomatous|histoplasmosis|prior|previous|old)\s+(?:\w+\s+)?$", before
    ):
        return None  # a healed granulomatous infection is not pneumonia
    if obs == "Atelectasis" and m.group(0) == "collapse" and re.search(
        r"\b(?:vertebra\w*|compression|body|bodies|t\d+|l\d+)\b", clause[max(0, m.start() - 30):m.end() + 30]
    ):
        return None  # a vertebral collapse is not atelectasis
    if obs == "Lung Lesion" and re.search(r"\b(?:thyroid|breast|soft tissue|neck)\s+$", before):
        return None
    if obs == "Edema" and re.search(r"\b(?:laryngeal|soft tissue|subcutaneous|extremity)\s+$", before):
        return None
    return obs


def _size_state(text: str) -> str | None:
    """The state word that comes first in ``text`` ("enlarged with normal vascularity" is enlarged); a phrase
    that starts earlier wins over a word inside it ("upper limits of normal", "not enlarged")."""
    found = [(m.start(), rank, state) for rank, (state, pattern) in enumerate(_SIZE_STATES)
             for m in pattern.finditer(text)]
    # "stable" names the state only when nothing else does ("stable and within normal limits" is normal)
    sized = [f for f in found if f[2] != "stable"] or found
    return min(sized)[2] if sized else None


def _size_mentions(clause: str) -> list[Mention]:
    """Cardiomegaly / Enlarged Cardiomediastinum from statements about the heart's or mediastinum's size.

    Each subject ("heart size", "cardiac silhouette", "mediastinum", "cardiomediastinal silhouette", ...)
    takes its state from the words just before it ("normal heart size", "borderline enlarged heart"),
    else from the first state word after it, skipping over other subjects that have no state of their own
    ("heart and mediastinum normal"), else from the previous subject of a list ("normal cardiac size,
    mediastinum, and ..."). States: borderline / upper limits of normal -> uncertain, normal / within normal
    limits / unremarkable / not enlarged -> negative, enlarged / large / widened -> positive, stable or
    unchanged alone -> no label.
    """
    subjects = list(_SIZE_SUBJECT.finditer(clause))
    if not subjects:
        return []
    states: list[str | None] = []
    for i, m in enumerate(subjects):
        lo = subjects[i - 1].end() if i else 0
        prefix = clause[lo:m.start()]
        prefix = prefix[prefix.rfind(",") + 1:]  # prefix words end at a comma ("stable, normal heart")
        # "normal heart size", "borderline enlarged heart"; through "of the": "prominence of the superior
        # mediastinum", "normal size and configuration of the cardiac silhouette"
        words = prefix.split()
        reach = 6 if re.search(r"\bof (?:the )?(?:\w+ )?$", prefix) else 3
        state = _size_state(" ".join(words[-reach:]))
        if state is None:
            # the predicate: the text after this subject up to the next subject that has its own prefix state
            hi = len(clause)
            for n in subjects[i + 1:]:
                between = clause[m.end():n.start()]
                if _size_state(" ".join(between.split()[-3:])) and "," not in between.split()[-1:]:
                    hi = n.start()
                    break
            state = _size_state(clause[m.end():hi])
        if state is None and i and re.fullmatch(r"[\s,]*(?:and\s+)?", clause[subjects[i - 1].end():m.start()]):
            state = states[i - 1]
        states.append(state)
    found = []
    for m, state in zip(subjects, states):
        if state in _SIZE_LABEL:
            kind = next(k for k in ("both", "ec", "cm") if m.group(k))
            found += [Mention(obs, _SIZE_LABEL[state], m.group(0)) for obs in _SIZE_OBS[kind]]
    return found


def mentions(report: str) -> list[Mention]:
    """Every observation mention in ``report`` with its label (1, 0 or -1)."""
    found = []
    for clause, rest in _clauses(str(report)):
        limited = [(m.start(), m.end()) for m in _LIMITED.finditer(clause)]
        spans = []
        for obs, pattern in _MENTION_RE.items():
            for m in pattern.finditer(clause):
                if any(a <= m.start() < b for a, b in limited):
                    continue  # "evaluation for pneumothorax is limited": no statement about pneumothorax
                target = _reassign(obs, clause, m, rest)
                if target is not None:
                    spans.append((m.start(), m.end(), target, m.group(0)))
        spans.sort()
        # Two names for one seen opacity ("atelectasis versus scarring"): the "versus" between them is not a hedge.
        text_for_cues = clause
        for (_, a, obs1, _), (b, _, obs2, _) in zip(spans, spans[1:]):
            gap = _ALTERNATIVE_GAP.match(clause[a:b]) if a <= b else None
            if gap and obs1 in _SEEN_ALTERNATIVES and obs2 in _SEEN_ALTERNATIVES:
                text_for_cues = text_for_cues[:a] + re.sub(r"\b(?:versus|vs)\b", lambda v: " " * len(v.group(0)),
                                                           clause[a:b]) + text_for_cues[b:]
        raw = [(start, end, obs, _classify(text_for_cues, start, end), text) for start, end, obs, text in spans]
        for i, (start, end, obs, label, text) in enumerate(raw):
            if label == POSITIVE:
                pairs = [(raw[i - 1][1], start, raw[i - 1][2])] if i else []
                pairs += [(end, raw[i + 1][0], raw[i + 1][2])] if i + 1 < len(raw) else []
                if any(a <= b and _ALTERNATIVE_GAP.match(clause[a:b])
                       and not (obs in _SEEN_ALTERNATIVES and other in _SEEN_ALTERNATIVES) for a, b, other in pairs):
                    label = UNCERTAIN  # "atelectasis or pneumonia": the diagnosis is not asserted
            found.append(Mention(obs, label, text))
        found += _size_mentions(clause)
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
