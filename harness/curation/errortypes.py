"""What kind of error a generated text makes about its case: the synthetic suite's error-type taxonomy.

:func:`classify` reads a text (a model's answer or report, a dispreferred text of a pair) against its case
with the fact checker (``harness.curation.factcheck.contradictions``) and names its errors:

| type | report | synth_vqa |
|---|---|---|
| ``denial`` | a present finding is denied or left out (the text asserts none of that finding's kind, e.g. "The lungs are clear.") | "no" to a present finding; "no abnormality" for a case with one |
| ``invented`` | asserts a finding (kind) the case lacks | "yes" to an absent finding; names a kind the case lacks |
| ``wrong_kind`` | another finding at the place of a true one | another kind in "what abnormality" |
| ``wrong_side`` | a true finding on the other side | "yes" to a present finding asked on the wrong side; a wrong side in "where" |
| ``wrong_level`` | a true finding in the other zone | a wrong zone in "where" |
| ``wrong_size`` | a true finding with another size grade | a wrong size in "what size" |
| ``other`` | what the suite never asks (count, measurement, modality, organ, appearance: real data) | |
| ``unreadable`` | (never: a report that names nothing asserts nothing) | neither yes nor no to a closed question; an open answer naming nothing the question asks |
| ``none`` | no error | no error |

A text has every type its contradictions map to (``types``) and one ``primary`` type, the first of
:data:`ERROR_TYPES` that it has (the priority: a missed finding first, then an invented one, then the
attribute errors of a real finding, most to least consequential, as ``harness.curation.factcheck.SEVERITY`` ranks
them). ``unreadable`` and ``none`` are only ever alone.

The same order ranks a sampled text's conflict with its case (:func:`conflict_rank`): the ground-truth
judge picks the sample whose primary type comes first, so a denial of a present finding is never passed
over for a size or side error, whatever the finding's urgency and size scale their severities to; within a
type, the most severe single contradiction wins, then the fewest contradictions (one pointed error beats
word salad), then the earlier sample.

:func:`error_mix` tallies primary types on lesion and normal cases; :func:`denial_rule` checks that denials
appear in a set of pairs in proportion to the base model's own denial rate (docs/hallucinations.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.curation.factcheck import Contradiction, contradictions
from harness.findings import synthetic as st

# In priority order: the primary type of a text is the first of these it has.
ERROR_TYPES = ("denial", "invented", "wrong_kind", "wrong_side", "wrong_level", "wrong_size", "other",
               "unreadable", "none")
# Fact-check contradiction kind -> error type.
CONTRADICTION_TYPE = {
    "denied_finding": "denial", "omitted_finding": "denial", "invented_finding": "invented",
    "wrong_kind": "wrong_kind", "laterality": "wrong_side", "location": "wrong_level", "size": "wrong_size",
    "measurement": "wrong_size", "organ": "other", "count": "other", "appearance": "other", "modality": "other",
    "wrong_answer": "other",
}
# Primary types that are errors (``none`` is not).
ERRORS = tuple(t for t in ERROR_TYPES if t != "none")
# The documented tolerance of the denial rule (a share, 0-1).
DENIAL_TOLERANCE = 0.05


@dataclass(frozen=True)
class ErrorReading:
    """The error types of one text about one case."""

    primary: str
    types: tuple[str, ...]
    contradictions: tuple[Contradiction, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "types": list(self.types)}


def classify(text: str, case: Mapping[str, Any]) -> ErrorReading:
    """The error types of ``text`` about ``case`` (a task row: ``answer``, ``answer_type``, ``question``;
    synthetic rows also ``lesion_kind``, ``lesion_location``, ``lesion_size``); see the module docstring."""
    found = tuple(contradictions(str(text), case))
    kinds = {CONTRADICTION_TYPE.get(c.kind, "other") for c in found}
    types = tuple(t for t in ERROR_TYPES if t in kinds)
    if types:
        return ErrorReading(types[0], types, found)
    primary = "none" if _readable(str(text), case) else "unreadable"
    return ErrorReading(primary, (primary,), found)


def conflict_rank(reading: ErrorReading) -> tuple[int, float, int]:
    """How clearly a text conflicts with its case, larger = clearer (module docstring): the primary type's
    priority, then the most severe single contradiction, then the fewest contradictions."""
    tier = len(ERROR_TYPES) - ERROR_TYPES.index(reading.primary)
    worst = max((c.severity for c in reading.contradictions), default=0.0)
    return tier, worst, -len(reading.contradictions)


def is_lesion_case(case: Mapping[str, Any]) -> bool | None:
    """True for a synthetic case with a lesion, False for a normal one, None when the row has no labels."""
    if case.get("lesion_kind") is None:
        return None
    return bool(st.case_findings(case))


def admits_denial(case: Mapping[str, Any]) -> bool:
    """Whether an answer to this item can deny a present finding: a report of a lesion case, a closed
    question whose true answer is "yes" (it asks about a present finding), a "what abnormality" question on a
    lesion case. "Where is the mass?", "What is its size?" and a "no" question cannot be answered with a
    denial, so the denial rule leaves them out on both sides."""
    if not is_lesion_case(case):
        return False
    answer = str(case.get("answer", "")).strip().lower().rstrip(".")
    kind = str(case.get("answer_type", "")).strip().lower()
    if kind == "report":
        return True
    if answer in ("yes", "no"):
        return answer == "yes"
    return bool(st.read_kinds(answer))


def case_group(case: Mapping[str, Any]) -> str:
    """``lesion``, ``normal`` or ``unlabelled`` (a real dataset's row)."""
    lesion = is_lesion_case(case)
    return "unlabelled" if lesion is None else "lesion" if lesion else "normal"


def _readable(text: str, case: Mapping[str, Any]) -> bool:
    """Whether a text with no contradiction answers what was asked (else it is ``unreadable``)."""
    answer = str(case.get("answer", ""))
    plain = re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
    if plain == re.sub(r"[^a-z0-9]+", " ", answer.lower()).strip():
        return True
    kind = str(case.get("answer_type", "")).strip().lower()
    if kind == "report":
        return True
    if kind == "closed" or re.sub(r"[^a-z]+", "", answer.lower()) in ("yes", "no"):
        return plain in ("yes", "no", "y", "n", "true", "false")
    if case.get("lesion_kind") is None:
        return True  # a real open answer: the fact check reads what it can
    question = str(case.get("question", "")).lower()
    if question.startswith("where"):
        return any(st.read_location(text))
    if "size" in question:
        return re.search(r"\b(small|medium|large)\b", text.lower()) is not None
    return st.read_kinds(text) is not None


# -------------------------------------------------------------------------------------------- tallies


def tally(primaries: Iterable[str]) -> dict[str, int]:
    """Counts per primary type, in :data:`ERROR_TYPES` order, types with no text left out."""
    counts = Counter(primaries)
    return {t: counts[t] for t in ERROR_TYPES if counts[t]}


def error_mix(entries: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``entries`` = (case group, primary type) pairs -> ``{n, lesion, normal[, unlabelled], all}``, each a
    :func:`tally`; ``n`` counts per group."""
    entries = list(entries)
    groups = ["lesion", "normal"] + (["unlabelled"] if any(g == "unlabelled" for g, _ in entries) else [])
    out: dict[str, Any] = {"n": {g: sum(1 for e, _ in entries if e == g) for g in groups}}
    for group in groups:
        out[group] = tally(p for g, p in entries if g == group)
    out["all"] = tally(p for _, p in entries)
    return out


def share(counts: Mapping[str, int], of: str, among: Sequence[str] | None = None) -> float | None:
    """The share of ``of`` among the counts of ``among`` (default: all types); None when there are none."""
    keys = list(among) if among is not None else list(counts)
    total = sum(counts.get(k, 0) for k in keys)
    return counts.get(of, 0) / total if total else None


def denial_rule(pair_primaries: Sequence[str], base_primaries: Sequence[str],
                tolerance: float = DENIAL_TOLERANCE) -> dict[str, Any]:
    """The denial-proportion rule (docs/hallucinations.md), over the items that admit a denial
    (:func:`admits_denial`: lesion cases whose question a denial can answer):

        share of those items' pairs whose rejected text is a denial  >=  b - tolerance,
        b = the base's greedy denials / the base's greedy errors, over the same kind of items.

    ``pair_primaries``: the primary types of those pairs' rejected texts; ``base_primaries``: of the base's
    greedy answers on those items (an empty list: the base was not measured, the rule is not checked).
    Returns the shares, the floor, how many more denials the pairs need (``missing``) and ``holds`` (None
    when unchecked).
    """
    base = tally(base_primaries)
    base_share = share(base, "denial", ERRORS)
    pairs = tally(pair_primaries)
    pair_share = share(pairs, "denial")
    out: dict[str, Any] = {"tolerance": tolerance, "base_denial_share": base_share, "pair_denial_share": pair_share,
                           "pairs": len(pair_primaries), "pair_denials": pairs.get("denial", 0),
                           "base_answers": len(base_primaries), "base_errors": sum(base.get(k, 0) for k in ERRORS),
                           "base_denials": base.get("denial", 0)}
    if base_share is None or not pair_primaries:
        return {**out, "floor": None, "missing": 0, "holds": None}
    floor = max(0.0, base_share - tolerance)
    need = math.ceil(floor * len(pair_primaries) - 1e-9)
    return {**out, "floor": floor, "missing": max(0, need - pairs.get("denial", 0)),
            "holds": (pair_share or 0.0) >= floor - 1e-12}


def floor_order(candidates: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The order in which the denial floor swaps pairs' rejected texts for denials: items whose alternative
    is the model's own greedy answer first, then those whose current rejected text is not the model's own
    (an injector fallback), then the rest; within each, by the item's ``order`` key (a seeded hash of its id)."""
    return sorted(candidates, key=lambda c: (c["alternative"]["source"] != "greedy", bool(c.get("own")), c["order"]))
