"""Reading free-text (real) reports beyond the labeler's 14 observations: report sentences, the chest findings
the labeler does not read (granuloma, scarring, hernia, emphysema, ...), and the finding a sentence asserts.

The observations themselves are read by ``harness.findings.labeler``; the fact checker compares both readings
of a candidate report with those of its reference.
"""

from __future__ import annotations

import re

from harness.findings import labeler as cx

# Chest findings the labeler does not read, for real reports (asserted / denied per sentence).
EXTRA_FINDINGS = ("granuloma", "granulomas", "scarring", "scar", "hernia", "emphysema", "calcification",
                  "calcifications", "calcified", "fibrosis", "hyperinflation", "hyperinflated", "scoliosis",
                  "kyphosis", "degenerative", "osteophytes", "spondylosis", "deformity", "eventration")
_EXTRA_RE = re.compile(r"\b(" + "|".join(EXTRA_FINDINGS) + r")\b")
_NEGATION = re.compile(r"\b(?:no|not|without|negative for|free of|absence of|absent|clear of|resolved)\b")


def sentences(text: str) -> list[str]:
    """The sentences of a report, stripped (a ``.`` between digits, as in "1.5 cm", ends none)."""
    return [s.strip() for s in re.split(r"(?<!\d)[.!?](?!\d)|\n|;", str(text)) if s.strip()]


def extra_findings(text: str) -> tuple[set[str], set[str]]:
    """Chest findings outside the labeler: (asserted, denied) term stems (the first six letters); a term is
    denied in a sentence where a negation cue precedes it, and a stem asserted anywhere is not denied."""
    asserted, denied = set(), set()
    for sentence in sentences(text.lower()):
        for match in _EXTRA_RE.finditer(sentence):
            stem = match.group(1)[:6]
            (denied if _NEGATION.search(sentence[:match.start()]) else asserted).add(stem)
    return asserted, denied - asserted


def asserted_finding(sentence: str) -> str | None:
    """The finding a sentence asserts: the first positive labeler observation (neither "No Finding" nor
    "Support Devices"), else "abnormality" for an extra chest finding, else None."""
    positives = [m.observation for m in cx.mentions(sentence) if m.label == cx.POSITIVE
                 and m.observation not in ("No Finding", "Support Devices")]
    if positives:
        return positives[0]
    asserted, _ = extra_findings(sentence)
    return "abnormality" if asserted else None
