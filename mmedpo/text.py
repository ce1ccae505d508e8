"""Textual dispreference: a plausible hallucination ``y_l`` for each ground-truth answer ``y_w``.

Generators (MMedPO Sec. 3.1):

- ``sample-and-judge`` (the paper): sample the target model ``k`` times; a judge picks the sample that most
  clearly conflicts with the ground truth; if none does, the ground truth is turned into a hallucination.
  Two judges can pick:

  - an LLM judge (``judge_dispreference``; the paper's GPT-4o): if no sample conflicts it rewrites the ground
    truth. A judge reply that stays malformed after retries falls back to the next step (rewrite, then the
    offline ``rules`` injector).
  - the ``ground-truth`` judge (``truth_dispreference``; offline, no LLM): the fact checker reads each
    sample against the case's labels or reference answer (``harness.curation.errortypes.classify``) and the sample
    that most clearly conflicts with it is picked (``harness.curation.textpairs.pick_conflicting_sample``: by error
    type first, a denial of a present finding before an invented finding before a wrong kind, side, level
    or size; then the most severe single contradiction; then the fewest; ties: the earliest sample). If no
    sample contradicts the truth, the verified injector (``harness.curation.hallucinate.make_hallucination``) writes
    one; if it cannot make a hallucination the fact checker confirms, the item is skipped.

  The record says which step produced ``y_l`` (``how``) and which judge took it (``judge``).
- ``rules`` (``text_generator=rules``): the verified injector alone, offline and deterministic
  (``verified_dispreference``); an item it cannot make a confirmed hallucination for is skipped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.curation.judges import Judge, ask, parse_choice
from harness.curation.textpairs import sample_answers
from mmedpo.judges import parse_hallucination
from mmedpo.prompts import load_prompt
from mmedpo.rules import inject

__all__ = ["HOWS", "TextDispreference", "judge_dispreference", "rules_dispreference", "sample_answers",
           "truth_dispreference", "verified_dispreference"]

log = logging.getLogger(__name__)

TEXT_GENERATORS = ("sample-and-judge", "rules")
GROUND_TRUTH_JUDGE = "ground-truth"
# How a rejected text was made (the pair's ``source`` is ``mmedpo-<how>``), in the order the steps are tried.
HOWS = {
    "truth-pick": "a model sample, picked by the ground-truth judge",
    "injector-fallback": "no model sample contradicted the truth: the verified injector's hallucination",
    "judge-pick": "a model sample, picked by the LLM judge",
    "judge-rewrite": "no model sample conflicted: the LLM judge's rewrite of the ground truth",
    "rules-fallback": "the LLM judge's replies stayed malformed: the rules injector",
    "rules": "the verified injector (text_generator=rules)",
    "denial-floor-greedy": "the denial floor swapped in the target model's own greedy denial",
    "denial-floor-injector": "the denial floor swapped in a verified injected denial",
}


@dataclass
class TextDispreference:
    rejected: str
    how: str  # a key of HOWS
    edits: list[Any] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    judge: str | None = None  # "ground-truth", the LLM judge's name, or None (rules)
    contradictions: list[Any] | None = None  # the fact checker's findings on ``rejected`` (ground-truth judge)

    def to_json(self) -> dict[str, Any]:
        data = {"how": self.how, "judge": self.judge, "edits": [_plain(e) for e in self.edits],
                "samples": self.samples}
        if self.contradictions is not None:
            data["contradictions"] = [_plain(c) for c in self.contradictions]
        return data


def _plain(item: Any) -> Any:
    if dataclasses.is_dataclass(item):
        return dataclasses.asdict(item)
    return getattr(item, "__dict__", item)


def rules_dispreference(answer: str, *, seed: int) -> TextDispreference:
    """The rules injector on the answer alone (the LLM path's last resort: it cannot skip the item)."""
    text, edits = inject(answer, seed=seed)
    return TextDispreference(text, "rules", edits)


def verified_dispreference(case: Any, *, seed: int, samples: Sequence[str] = (),
                           how: str = "rules", judge: str | None = None) -> TextDispreference | None:
    """The injector's hallucination of ``case['answer']`` that the fact checker confirms contradicts the case
    (``harness.curation.hallucinate.make_hallucination``), or None when it cannot make one (the caller skips the item)."""
    from harness.curation.hallucinate import make_hallucination

    made = make_hallucination(case, seed=seed)
    if made is None:
        return None
    return TextDispreference(made.text, how, list(made.edits), list(samples), judge=judge,
                             contradictions=list(made.contradictions))


def _candidates(answer: str, samples: Sequence[str]) -> list[str]:
    """Distinct non-empty samples that differ from the ground truth (up to case and punctuation), in order."""
    from harness.curation.textpairs import candidates

    return candidates(answer, samples)


def truth_dispreference(case: Any, answer: str, samples: Sequence[str], *, seed: int) -> TextDispreference | None:
    """The ground-truth judge: the sample that most clearly conflicts with ``case``, else the verified
    injector's hallucination of it, else None (nothing verifiable: the caller skips the item).

    "Most clearly" is ``harness.curation.errortypes.conflict_rank``: the error type first (a denial of a present
    finding, then an invented finding, a wrong kind, side, level, size), so a denial is never passed over for
    a minor attribute error; then the most severe single contradiction; then the fewest contradictions (a
    plausible hallucination makes one pointed error; summing errors would favour word salad from a small
    model). A tie keeps the earlier sample. ``case`` is the task's sample (labels, reference answer).
    """
    from harness.curation.textpairs import pick_conflicting_sample

    picked = pick_conflicting_sample(case, answer, samples)
    if picked is not None:
        return TextDispreference(picked[0], "truth-pick", samples=list(samples), judge=GROUND_TRUTH_JUDGE,
                                 contradictions=list(picked[1].contradictions))
    return verified_dispreference(case, seed=seed, samples=samples, how="injector-fallback", judge=GROUND_TRUTH_JUDGE)


def judge_dispreference(judge: Judge, question: str, answer: str, samples: Sequence[str], *, seed: int,
                        retries: int = 2) -> TextDispreference:
    """The paper's selection: pick the most conflicting sample, else rewrite, else fall back to rules."""
    candidates = _candidates(answer, samples)
    if candidates:
        listing = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(candidates))
        prompt = load_prompt("pick_conflict").render(question=question, ground_truth=answer, candidates=listing)
        choice, _ = ask(judge, prompt, lambda r: parse_choice(r, len(candidates)), retries=retries, what="choice")
        if isinstance(choice, int):
            return TextDispreference(candidates[choice], "judge-pick", samples=list(samples), judge=judge.name)
        if choice is None:
            log.warning("judge %s: no usable choice among %d samples; asking for a rewrite", judge.name,
                        len(candidates))
    prompt = load_prompt("rewrite").render(question=question, ground_truth=answer)
    rewritten, _ = ask(judge, prompt, lambda r: parse_hallucination(r, answer), retries=retries, what="rewrite")
    if rewritten is not None:
        return TextDispreference(rewritten, "judge-rewrite", samples=list(samples), judge=judge.name)
    log.warning("judge %s: no usable rewrite; falling back to the offline rules injector", judge.name)
    fallback = rules_dispreference(answer, seed=seed)
    return TextDispreference(fallback.rejected, "rules-fallback", fallback.edits, list(samples), judge=judge.name)
