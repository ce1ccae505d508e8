"""STLLaVA-Med: self-training with a strong judge's preferences over the model's own samples (Sun et al. 2024).

Pair building (the DPO stage of STLLaVA-Med): the model samples ``k`` answers per training question; a
strong judge (GPT-4o in the paper, acting as a biomedical expert) picks the preferred and the dispreferred
answer among them; the loss is DPO.

Judges (``--option judge=...``):

- ``reference`` (the offline default, deterministic): a reference-based scorer against the ground truth,
  standing in for GPT-4o's preference: for closed questions 1 + token F1 when the yes/no agrees with the
  ground truth, else token F1; for open questions and reports token F1; ties (frequent: answers sharing no
  word with the ground truth all score 0) broken by character similarity to the ground truth (``difflib``).
  Highest vs lowest score.
- ``openai:<model>`` (an OpenAI-compatible endpoint) or ``hf:<path>`` (a local causal LM): the judge gets the
  question, the ground-truth answer and the numbered candidates and answers ``BEST: i WORST: j``
  (``harness.curation.judges``: retries on malformed replies, disk cache for endpoints). A reply that still does
  not parse, or names one answer twice, falls back to the reference scorer (counted in the log and
  recorded per pair in ``extra["chosen_by"]``).

Departures, and why: the paper's judge sees the image; the harness's judges are text chat models, so the
ground-truth answer stands in for the image (the comparison is then reference-guided). The paper's
self-questioning stage (the model writes its own questions about the image before the DPO stage) is not
reproduced: the questions are the task's training questions, the same ones every method here trains on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from baselines._self_generated import (
    CandidateOptions,
    best_and_worst,
    build_counted_pairs,
    parsed_options,
    reference_score,
    same_text,
    sample_responses,
)
from baselines.dpo import DPO
from harness.core.options import option_field
from harness.curation.preferences import PreferencePair
from harness.methods.base import PairContext

PAIRS_FILE = "stllava_med_pairs.jsonl"

JUDGE_PROMPT = """You are a biomedical expert reviewing answers a medical vision-language assistant gave \
about a medical image. You cannot see the image; the ground-truth answer tells you what it shows.

Question: {question}
Ground-truth answer: {answer}

Candidate answers:
{candidates}

Which candidate is the most accurate and helpful answer, and which is the least accurate (the one that \
contradicts the ground truth most, or hallucinates findings)? Reply with exactly one line:
BEST: <number> WORST: <number>"""


@dataclass
class STLLaVAMedOptions(CandidateOptions):
    """STLLaVA-Med's pair-builder options (``--option KEY=VALUE``)."""

    judge: str = option_field("reference", "who picks best and worst: 'reference' (offline scorer against the "
                                           "ground truth), 'openai:<model>' or 'hf:<path>' (harness.curation.judges)")
    retries: int = option_field(2, "re-asks after a malformed judge reply before the reference scorer decides")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")


def parse_best_worst(reply: str, count: int) -> tuple[int, int] | None:
    """``BEST: i WORST: j`` (1-based, i != j, both in range) -> (i-1, j-1); else None."""
    best = re.search(r"best\s*[:=]\s*(\d+)", reply, re.IGNORECASE)
    worst = re.search(r"worst\s*[:=]\s*(\d+)", reply, re.IGNORECASE)
    if not best or not worst:
        return None
    i, j = int(best.group(1)) - 1, int(worst.group(1)) - 1
    if i == j or not (0 <= i < count and 0 <= j < count):
        return None
    return i, j


class STLLaVAMed(DPO):
    """STLLaVA-Med's preference stage: judge-picked best vs worst self-sample, DPO loss (DPO Eq. 7).

        loss = -log sigmoid(beta * h),  h = log pi/pi_ref (y_best) - log pi/pi_ref (y_worst)

    Worked example: as DPO, beta = 0.1 and h = 3 give 0.554355.

    Builder options: ``STLLaVAMedOptions`` (``harness methods stllava_med`` lists them).
    """

    name = "stllava_med"
    citation = (
        "Sun, Qin, Fu, Wang, Tao. STLLaVA-Med: Self-Training Large Language and Vision Assistant for Medical "
        "Question-Answering. EMNLP 2024. arXiv:2406.19973"
    )
    pair_kinds = ("text",)
    needs_model = True
    builder_options = STLLaVAMedOptions

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        options = parsed_options(self, context.options)
        judge = None
        if options["judge"] != "reference":
            from harness.curation.judges import make_judge

            judge = make_judge(options["judge"])
        return build_counted_pairs(
            self, context, partial(self._chunk, judge=judge), options=options, counts=("judge", "reference", "tie"),
            unit="question", pairs_file=PAIRS_FILE,
            summary="stllava_med: %d pairs from %d questions (picked by the judge: %d, by the reference scorer: "
                    "%d; no pair, candidates indistinguishable: %d)")

    def _chunk(self, model, chunk, seed: int, options, *, judge) -> dict:
        """One chunk of questions: sample, let the judge (or the reference scorer) pick; JSON for the journal."""
        answers = sample_responses(model, chunk, k=options["k"], max_new_tokens=options["max_new_tokens"],
                                   temperature=options["temperature"], top_p=options["top_p"], seed=seed)
        pairs, counts = [], {"judge": 0, "reference": 0, "tie": 0}
        for sample, cands in zip(chunk, answers):
            picked, how = self._pick(judge, sample, cands, options["retries"])
            if picked is None:
                counts["tie"] += 1
                continue
            counts[how] += 1
            best, worst = picked
            pairs.append(PreferencePair(
                id=sample.id, image=sample.image_name, prompt=sample.prompt, chosen=cands[best],
                rejected=cands[worst], kind="text", source=f"stllava-med-{options['judge']}",
                extra={"chosen_by": how}).as_dict())
        return {"pairs": pairs, "counts": counts}

    def _pick(self, judge, sample, cands: list[str], retries: int) -> tuple[tuple[int, int] | None, str]:
        if judge is not None:
            from harness.curation.judges import ask

            listing = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(cands))
            prompt = JUDGE_PROMPT.format(question=sample.question or sample.prompt, answer=sample.answer,
                                         candidates=listing)
            picked, _ = ask(judge, prompt, lambda reply: parse_best_worst(reply, len(cands)), retries=retries,
                            what="best/worst choice")
            if picked is not None and not same_text(cands[picked[0]], cands[picked[1]]):
                return picked, "judge"
        scores = [reference_score(text, sample.answer, sample.answer_type) for text in cands]
        return best_and_worst(cands, scores), "reference"
