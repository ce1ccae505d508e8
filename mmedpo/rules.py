"""MMedPO's offline text-hallucination generator (``rules``): a thin layer over ``harness.hallucinate``.

MMedPO's dispreferred text is "a plausible hallucination" of the ground truth (arXiv 2412.06141, Sec. 3.1).
Without a judge LLM it comes from the project's one rule-based injector, ``harness.hallucinate`` (shared
with POVID and the default DPO text pairs), whose edits are typed (``negation``, ``finding``,
``laterality``, ``location``, ``modality``, ``severity``, ``answer``, ...). This module adds what only
MMedPO needs: how clinically serious each kind of edit is, which the offline relevance scorer
(``mmedpo.relevance.heuristic_score``) uses to weight the pair.

The same ``(answer, seed)`` always gives the same hallucination.
"""

from __future__ import annotations

from harness.hallucinate import Edit, candidate_edits, category_of, hallucinate_with_edits

__all__ = ["CATEGORY_WEIGHT", "Edit", "candidate_edits", "category_of", "inject"]

# How clinically serious each kind of edit is (used by the offline relevance scorer and documented there);
# keyed by every ``harness.hallucinate.CATEGORIES`` (tests/mmedpo/test_rules.py checks it), since an
# unweighted category would silently score as a non-clinical change.
CATEGORY_WEIGHT = {
    "negation": 1.0, "answer": 1.0, "diagnosis": 0.9, "finding": 0.9, "laterality": 0.8, "count": 0.8,
    "location": 0.7, "modality": 0.6, "severity": 0.5, "append": 0.4,
}


def inject(answer: str, *, seed: int = 0, max_edits: int = 1) -> tuple[str, list[Edit]]:
    """Return ``(hallucinated text, edits)``; the text always differs from ``answer``.

    See ``harness.hallucinate.hallucinate_with_edits``: closed answers flip, otherwise up to ``max_edits``
    vocabulary terms are swapped, and a text with nothing to edit gets a false finding appended.
    """
    return hallucinate_with_edits(answer, seed=seed, max_edits=max_edits)
