"""MMedPO's offline text-hallucination generator (``rules``): a thin layer over ``harness.curation.hallucinate``.

MMedPO's dispreferred text is "a plausible hallucination" of the ground truth (arXiv 2412.06141, Sec. 3.1).
Without a judge LLM it comes from the project's one rule-based injector, ``harness.curation.hallucinate`` (shared
with POVID and the default DPO text pairs): an edit of the ground truth that ``harness.curation.factcheck`` confirms
contradicts the case (a denied or invented finding, a wrong kind, side, level, size or count), or nothing,
in which case the item is skipped. The pair's offline clinical relevance is the severity of what the edit
contradicts (``harness.curation.factcheck.severity``; ``mmedpo.relevance.heuristic_score``).

The same ``(sample, seed)`` always gives the same hallucination.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.curation.hallucinate import Edit, hallucinate_with_edits, make_hallucination

__all__ = ["CATEGORY_WEIGHT", "inject"]

# The legacy relevance of each kind of edit, used only when what a rejected text contradicts cannot be
# read (``mmedpo.relevance.heuristic_score`` without a sample, on a text the fact check reads no
# contradiction in); keyed by every ``harness.curation.hallucinate.CATEGORIES``.
CATEGORY_WEIGHT = {
    "answer": 1.0, "negation": 1.0, "finding": 0.9, "laterality": 0.8, "count": 0.8, "location": 0.7,
    "modality": 0.6, "severity": 0.5, "append": 0.4,
}


def inject(answer: str, *, seed: int = 0, max_edits: int = 1,
           sample: Mapping[str, Any] | None = None) -> tuple[str, list[Edit]]:
    """Return ``(hallucinated text, edits)``; the text always differs from ``answer``.

    With the task row (``sample``) the hallucination is checked against the case itself; without it the
    answer type is guessed (``harness.curation.hallucinate.hallucinate_with_edits``). Callers that can skip an item
    should call ``make_hallucination`` and skip where it returns None; here an unverifiable item gets a
    finding sentence appended.
    """
    if sample is not None:
        made = make_hallucination({**sample, "answer": answer}, seed=seed)
        if made is not None:
            return made.text, made.edits
    return hallucinate_with_edits(answer, seed=seed, max_edits=max_edits)
