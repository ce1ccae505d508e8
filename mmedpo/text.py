"""Textual dispreference: a plausible hallucination ``y_l`` for each ground-truth answer ``y_w``.

Generators (MMedPO Sec. 3.1):

- ``sample-and-judge`` (the paper): sample the target model ``k`` times; a judge picks the sample that most
  clearly conflicts with the ground truth; if none does, the ground truth is turned into a hallucination.
  Two judges can pick:

  - an LLM judge (``judge_dispreference``; the paper's GPT-4o): if no sample conflicts it rewrites the ground
    truth. A judge reply that stays malformed after retries falls back to the next step (rewrite, then the
    offline ``rules`` injector).
  - the ``ground-truth`` judge (``truth_dispreference``; offline, no LLM): the fact checker
    (``harness.factcheck.contradictions``) compares each sample with the case's labels or reference answer and
    the sample with the highest ``severity`` is picked (ties: the earliest sample). If no sample contradicts
    the truth, the verified injector (``harness.hallucinate.make_hallucination``) writes one; if it cannot
    make a hallucination the fact checker confirms, the item is skipped.

  The record says which step produced ``y_l`` (``how``) and which judge took it (``judge``).
- ``rules`` (the default when no judge is configured): the verified injector alone, offline and deterministic
  (``verified_dispreference``); an item it cannot make a confirmed hallucination for is skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmedpo.judges import Judge, ask, parse_choice, parse_hallucination
from mmedpo.prompts import load_prompt
from mmedpo.rules import inject

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


def _same(a: str, b: str) -> bool:
    norm = lambda t: re.sub(r"[^a-z0-9]+", " ", str(t).lower()).strip()  # noqa: E731
    return norm(a) == norm(b)


def rules_dispreference(answer: str, *, seed: int) -> TextDispreference:
    """The rules injector on the answer alone (the LLM path's last resort: it cannot skip the item)."""
    text, edits = inject(answer, seed=seed)
    return TextDispreference(text, "rules", edits)


def verified_dispreference(case: Any, *, seed: int, samples: Sequence[str] = (),
                           how: str = "rules", judge: str | None = None) -> TextDispreference | None:
    """The injector's hallucination of ``case['answer']`` that the fact checker confirms contradicts the case
    (``harness.hallucinate.make_hallucination``), or None when it cannot make one (the caller skips the item)."""
    from harness.hallucinate import make_hallucination

    made = make_hallucination(case, seed=seed)
    if made is None:
        return None
    return TextDispreference(made.text, how, list(made.edits), list(samples), judge=judge,
                             contradictions=list(made.contradictions))


def sample_answers(model: Any, images: Sequence[Any], prompts: Sequence[str], *, k: int, seed: int,
                   temperature: float = 1.0, max_new_tokens: int = 64) -> list[list[str]]:
    """``k`` sampled answers per prompt from the target model (``VisionLanguageModel.generate``)."""
    from harness.models.base import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                              num_return_sequences=k, seed=seed)
    out = model.generate(list(images), list(prompts), config)
    if k == 1:
        return [[a] for a in out]
    return [list(a) for a in out]


def _candidates(answer: str, samples: Sequence[str]) -> list[str]:
    """Distinct non-empty samples that differ from the ground truth (up to case and punctuation), in order."""
    return [s for s in dict.fromkeys(str(s).strip() for s in samples) if s and not _same(s, answer)]


def truth_dispreference(case: Any, answer: str, samples: Sequence[str], *, seed: int) -> TextDispreference | None:
    """The ground-truth judge: the sample that most contradicts ``case``, else the verified injector's
    hallucination of it, else None (nothing verifiable: the caller skips the item).

    "Most" ranks by the most severe single contradiction, then by the fewest contradictions: a plausible
    hallucination makes one pointed error, and summing errors would favour incoherent samples that get
    everything wrong at once (word salad from a small model). A tie keeps the earlier sample.
    ``case`` is the task's sample (labels, reference answer) as ``harness.factcheck.contradictions`` reads it.
    """
    from harness.factcheck import contradictions

    best: tuple[tuple[float, int], str, list[Any]] | None = None
    for candidate in _candidates(answer, samples):
        found = contradictions(candidate, case)
        if not found:
            continue
        rank = (max(c.severity for c in found), -len(found))
        if best is None or rank > best[0]:  # strict: a tie keeps the earlier sample
            best = (rank, candidate, list(found))
    if best is not None:
        return TextDispreference(best[1], "truth-pick", samples=list(samples), judge=GROUND_TRUTH_JUDGE,
                                 contradictions=best[2])
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
