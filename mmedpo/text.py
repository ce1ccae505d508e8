"""Textual dispreference: a plausible hallucination ``y_l`` for each ground-truth answer ``y_w``.

Generators (MMedPO Sec. 3.1):

- ``sample-and-judge`` (the paper): sample the target model ``k`` times; a judge picks the sample that most
  clearly conflicts with the ground truth; if none does, the judge rewrites the ground truth into a
  hallucination. A judge reply that stays malformed after retries falls back to the next step (rewrite,
  then the offline ``rules`` injector); the record says which step produced ``y_l``.
- ``rules``: ``mmedpo.rules.inject``, offline and deterministic (the default when no judge is configured).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from mmedpo.judges import Judge, ask, parse_choice, parse_hallucination
from mmedpo.prompts import load_prompt
from mmedpo.rules import Edit, inject

log = logging.getLogger(__name__)

TEXT_GENERATORS = ("sample-and-judge", "rules")


@dataclass
class TextDispreference:
    rejected: str
    how: str  # "rules", "judge-pick", "judge-rewrite", "rules-fallback"
    edits: list[Edit] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"how": self.how, "edits": [e.__dict__ for e in self.edits], "samples": self.samples}


def _same(a: str, b: str) -> bool:
    norm = lambda t: re.sub(r"[^a-z0-9]+", " ", str(t).lower()).strip()  # noqa: E731
    return norm(a) == norm(b)


def rules_dispreference(answer: str, *, seed: int) -> TextDispreference:
    text, edits = inject(answer, seed=seed)
    return TextDispreference(text, "rules", edits)


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


def judge_dispreference(judge: Judge, question: str, answer: str, samples: Sequence[str], *, seed: int,
                        retries: int = 2) -> TextDispreference:
    """The paper's selection: pick the most conflicting sample, else rewrite, else fall back to rules."""
    candidates = [s for s in dict.fromkeys(s.strip() for s in samples) if s and not _same(s, answer)]
    if candidates:
        listing = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(candidates))
        prompt = load_prompt("pick_conflict").render(question=question, ground_truth=answer, candidates=listing)
        choice, _ = ask(judge, prompt, lambda r: parse_choice(r, len(candidates)), retries=retries, what="choice")
        if isinstance(choice, int):
            return TextDispreference(candidates[choice], "judge-pick", samples=list(samples))
        if choice is None:
            log.warning("judge %s: no usable choice among %d samples; asking for a rewrite", judge.name,
                        len(candidates))
    prompt = load_prompt("rewrite").render(question=question, ground_truth=answer)
    rewritten, _ = ask(judge, prompt, lambda r: parse_hallucination(r, answer), retries=retries, what="rewrite")
    if rewritten is not None:
        return TextDispreference(rewritten, "judge-rewrite", samples=list(samples))
    log.warning("judge %s: no usable rewrite; falling back to the offline rules injector", judge.name)
    fallback = rules_dispreference(answer, seed=seed)
    return TextDispreference(fallback.rejected, "rules-fallback", fallback.edits, list(samples))


def check_generator(name: str, judge: Judge | None) -> None:
    if name not in TEXT_GENERATORS:
        raise HarnessError(f"unknown text generator '{name}' (known: {', '.join(TEXT_GENERATORS)})")
    if name == "sample-and-judge" and judge is None:
        raise HarnessError("text generator 'sample-and-judge' needs a judge (--judge openai:<model> or hf:<path>)")
