"""MMedPO's own judge-reply parser: ``parse_hallucination`` reads the judge's rewrite of the ground truth.

The generic judge machinery (the ``Judge`` protocol, ``make_judge`` for ``openai:<model>`` and ``hf:<path>``,
``ask`` with retries, ``parse_choice`` and ``parse_score``) lives in ``harness.curation.judges``, where the
baselines use it too (the layering rule: baselines never import mmedpo); import it from there.
"""

from __future__ import annotations

import re

from harness.findings.answers import normal_text

__all__ = ["parse_hallucination"]


def parse_hallucination(reply: str, ground_truth: str) -> str | None:
    """``HALLUCINATION: text`` -> text, if non-empty and different from the ground truth (case and
    punctuation aside)."""
    match = re.search(r"hallucination\s*[:=]\s*(.+)", reply, re.IGNORECASE)
    if not match:
        return None
    text = match.group(1).strip().strip('"').strip()
    if not text or normal_text(text) == normal_text(ground_truth):
        return None
    return text
