"""Judges of the MMedPO curation: the LLMs that pick or write hallucinations and score clinical relevance.

The generic machinery (the ``Judge`` protocol, ``make_judge`` for ``openai:<model>`` and ``hf:<path>``,
``ask`` with retries, ``parse_choice`` and ``parse_score``) lives in ``harness.curation.judges`` so that baselines
can use it too (the layering rule: baselines never import mmedpo); it is re-exported here under the same
names. MMedPO's own parser, ``parse_hallucination``, stays here.
"""

from __future__ import annotations

import re

from harness.curation.judges import (
    Judge,
    LocalLMJudge,
    OpenAIJudge,
    _norm,
    ask,
    log,
    make_judge,
    parse_choice,
    parse_score,
)

__all__ = ["Judge", "LocalLMJudge", "OpenAIJudge", "ask", "log", "make_judge", "parse_choice",
           "parse_hallucination", "parse_score"]


def parse_hallucination(reply: str, ground_truth: str) -> str | None:
    """``HALLUCINATION: text`` -> text, if non-empty and different from the ground truth."""
    match = re.search(r"hallucination\s*[:=]\s*(.+)", reply, re.IGNORECASE)
    if not match:
        return None
    text = match.group(1).strip().strip('"').strip()
    if not text or _norm(text) == _norm(ground_truth):
        return None
    return text
