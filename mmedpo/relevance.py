"""Clinical-relevance scores and the pair weights derived from them (MMedPO Sec. 3.2, Eq. 4-5).

- Text pairs: several medical LLMs score the dispreferred answer *in turn*; each sees the previous score
  and either agrees or gives a new one; scoring stops at consensus (every judge has endorsed the current
  score in a row) or after ``max_rounds`` rounds (a round = one turn of every judge); the score is the
  mean of all scores given (an agreement counts as giving the score it endorses).
- Visual pairs: the localizer's confidence.
- Offline (no judge): ``heuristic_score``, the clinical severity of what the rejected text contradicts in
  the case (``harness.curation.factcheck``: a denied or invented finding, wrong kind, side, level, size or count,
  scaled by the finding's urgency and size).
- Normalization: ``paper`` rescales the dataset's scores to mean 1 and variance 0.1 and clips to
  [0.75, 1.25] (the workable reading of the paper's Z; read literally it maps every score in [0, 1] to
  0.75); ``release`` keeps the raw scores in [0, 1] (the released code multiplies each loss by them);
  ``none`` gives every pair weight 1 (the no-weights ablation).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import HarnessError
from harness.curation.factcheck import contradictions, severity
from harness.curation.hallucinate import Edit, category_of
from harness.curation.judges import Judge, ask, parse_score
from harness.findings.answers import guess_answer_type
from mmedpo.prompts import load_prompt
from mmedpo.rules import CATEGORY_WEIGHT

log = logging.getLogger(__name__)

NORMALIZATIONS = ("paper", "release", "none")
PAPER_MEAN, PAPER_VARIANCE, PAPER_CLIP = 1.0, 0.1, (0.75, 1.25)


@dataclass
class Relevance:
    score: float
    source: str  # "consensus", "heuristic", "localizer", "heuristic-fallback"
    scores_given: list[float] = field(default_factory=list)
    rounds: int = 0
    consensus: bool = False

    def to_json(self) -> dict:
        return {"score": self.score, "source": self.source, "scores_given": self.scores_given,
                "rounds": self.rounds, "consensus": self.consensus}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)?", text.lower())


def heuristic_score(chosen: str, rejected: str, edits: Sequence[Edit] | None = None, *,
                    sample: Mapping[str, Any] | None = None) -> float:
    """Offline relevance in [0, 1]: how clinically serious what ``rejected`` contradicts is.

    ``sample`` is the task row (its ``answer`` is taken to be ``chosen``); synthetic rows are checked
    against the case's exact findings. The score is ``harness.curation.factcheck.severity`` of the contradictions
    found (0 when a sample is given and the rejected text contradicts nothing). Without a sample the row is
    guessed from ``chosen`` (yes/no -> closed, several sentences -> report, else open); where that reading
    finds no contradiction the legacy rule applies: the largest ``CATEGORY_WEIGHT`` of the injector's
    ``edits``, else a word diff scored by the changed words' categories (0.2 for non-clinical wording),
    and 0 for identical texts.
    """
    if sample is not None:
        return severity(contradictions(rejected, {**sample, "answer": chosen}))
    guessed = {"answer": chosen, "answer_type": guess_answer_type(chosen), "question": ""}
    found = contradictions(rejected, guessed)
    if found:
        return severity(found)
    if edits:
        return max(CATEGORY_WEIGHT.get(e.category, 0.2) for e in edits)
    a, b = _tokens(chosen), _tokens(rejected)
    if a == b:
        return 0.0
    changed: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed.extend(a[i1:i2] + b[j1:j2])
    weights = [CATEGORY_WEIGHT[c] for c in (category_of(t) for t in changed) if c in CATEGORY_WEIGHT]
    return max(weights) if weights else 0.2


class ConsensusScorer:
    """Multi-judge consensus over ``judges`` (in turn), at most ``max_rounds`` rounds."""

    def __init__(self, judges: Sequence[Judge], *, max_rounds: int = 5, retries: int = 2, tolerance: float = 0.05):
        if not judges:
            raise HarnessError("consensus scoring needs at least one judge")
        self.judges = list(judges)
        self.max_rounds = max_rounds
        self.retries = retries
        self.tolerance = tolerance  # a new score this close to the previous one counts as agreement

    def _prompt(self, question: str, chosen: str, rejected: str, previous: float | None) -> str:
        if previous is None:
            prev, agree = "", ""
        else:
            prev = f"\nAnother physician rated it {previous:.2f}. If you agree, reply \"AGREE\"; otherwise give your score.\n"
            agree = ' or "AGREE"'
        return load_prompt("relevance").render(question=question, ground_truth=chosen, rejected=rejected,
                                               previous=prev, agree_option=agree)

    def score(self, question: str, chosen: str, rejected: str, *, edits: Sequence[Edit] | None = None) -> Relevance:
        given: list[float] = []
        current: float | None = None
        streak = 0  # judges in a row that endorsed ``current`` (its proposer included)
        turns = 0
        for round_index in range(self.max_rounds):
            for judge in self.judges:
                turns += 1
                agreeable = current is not None
                reply, _ = ask(judge, self._prompt(question, chosen, rejected, current),
                               lambda r, agreeable=agreeable: parse_score(r, allow_agree=agreeable),
                               retries=self.retries, what="relevance score")
                if reply is None:
                    log.warning("judge %s gave no usable score; its turn is skipped", judge.name)
                    continue
                if reply == "agree" or (current is not None and abs(float(reply) - current) <= self.tolerance):
                    given.append(current)
                    streak += 1
                else:
                    current = float(reply)
                    given.append(current)
                    streak = 1
                if streak >= len(self.judges):
                    return Relevance(sum(given) / len(given), "consensus", given, round_index + 1, True)
        if not given:
            fallback = heuristic_score(chosen, rejected, edits)
            log.warning("no judge gave a usable score after %d turns; using the offline heuristic (%.2f)",
                        turns, fallback)
            return Relevance(fallback, "heuristic-fallback", [], self.max_rounds, False)
        return Relevance(sum(given) / len(given), "consensus", given, self.max_rounds, False)


def normalize(scores: Sequence[float], mode: str = "paper") -> list[float]:
    """Turn raw scores into pair weights with ``mode`` (see the module docstring)."""
    if mode == "none":
        return [1.0] * len(scores)
    if mode == "release":
        return [float(s) for s in scores]
    if mode != "paper":
        raise HarnessError(f"unknown weight normalization '{mode}' (known: {', '.join(NORMALIZATIONS)})")
    low, high = PAPER_CLIP
    return [min(max(w, low), high) for w in rescale(scores)]


def rescale(scores: Sequence[float]) -> list[float]:
    """The paper's standardization before clipping: mean 1, variance 0.1 (constant scores -> all 1).

    Clipping to [0.75, 1.25] then necessarily shrinks the variance (at most 0.0625 fits in that interval;
    with variance 0.1 about a third of a normal-shaped set of scores lands on the bounds).
    """
    if not scores:
        return []
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if std <= 1e-12:
        return [PAPER_MEAN] * len(scores)  # all pairs equally relevant
    scale = math.sqrt(PAPER_VARIANCE) / std
    return [PAPER_MEAN + (s - mean) * scale for s in scores]
