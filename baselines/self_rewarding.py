"""Self-Rewarding: the model samples answers and judges them itself (Yuan et al. 2024); loss: DPO.

Pair building, one iteration M_{i-1} -> pairs for M_i (Yuan et al. Sec. 2):

1. the model samples ``k`` answers per training prompt (paper: N = 4, temperature 0.7, top-p 0.9);
2. the same model, as an LLM-as-a-Judge, rates each answer with the paper's additive 5-point rubric
   (Fig. 2), here adapted to an image: the judge prompt goes to the model WITH the image, asking how well
   the answer is supported by it; the reply's ``Score: x`` (0-5) is parsed;
3. the highest- and the lowest-scored answers form (chosen, rejected); a prompt whose answers all score
   the same gives no pair (as in the paper).

Departures, and why:

- Unparseable judge replies (a small or untrained model rarely writes ``Score: x``) fall back to a
  documented, deterministic offline score for ALL answers of that prompt: the model's own mean per-token
  log-probability of the answer (its confidence), so scores within one prompt stay comparable. How many
  prompts fell back is logged and each pair records ``extra["scored_by"]`` (``judge`` or ``logprob``).
  ``judge=logprob`` skips the judge prompt altogether.
- Iterations: iteration i > 1 needs the model trained in iteration i - 1, so one build is one iteration.
  Chain them with ``harness run``: run iteration 1 on the base model, then pass its trained model folder
  as ``--model`` with ``--option iteration=2`` (the option only labels the pairs' ``source``, as
  ``self-rewarding-M<i>``). The paper's instruction-following self-instruction (new prompts written by
  the model) is not reproduced: the prompts are the task's training questions.
- The paper also seeds training with human-written instruction and judge data (IFT/EFT); the harness
  starts from whatever base model is given (SFT is a separate method).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baselines._self_generated import (
    CandidateOptions,
    best_and_worst,
    build_counted_pairs,
    mean_logps,
    sample_responses,
)
from baselines.dpo import DPO
from harness.core.options import option_field
from harness.curation.preferences import PreferencePair
from harness.methods.base import PairContext

PAIRS_FILE = "self_rewarding_pairs.jsonl"

# Yuan et al. Fig. 2, with "the image" added where the original only has the user's question.
JUDGE_PROMPT = """Review the user's question about the image and the corresponding response using the \
additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each \
criterion:
- Add 1 point if the response is relevant and provides some information related to the question, even if \
incomplete or with some irrelevant content.
- Add another point if the response addresses a substantial portion of the question, but does not \
completely resolve it.
- Add a third point if the response answers the basic elements of the question in a useful way, and what \
it states is consistent with the image.
- Award a fourth point if the response is clearly written, directly and comprehensively answers the \
question, and every finding it states is visible in the image.
- Bestow a fifth point for a response that is impeccably tailored to the question and the image, without \
extraneous information, reflecting expert knowledge.

Question: {question}
Response: {response}

After examining the image, the question and the response, conclude with the score using the format: \
"Score: <total points>"."""


@dataclass
class SelfRewardingOptions(CandidateOptions):
    """Self-Rewarding's pair-builder options (``--option KEY=VALUE``); sampling as in the paper."""

    temperature: float = option_field(0.7, "sampling temperature of the model's answers (paper: 0.7)")
    top_p: float = option_field(0.9, "nucleus sampling top-p (paper: 0.9)")
    judge: str = option_field("self", "'self': the model rates each answer with the rubric, falling back to its mean "
                                      "log-prob when a reply does not parse; 'logprob': the mean log-prob only",
                              choices=("self", "logprob"))
    judge_max_new_tokens: int = option_field(32, "longest judge reply, in tokens")
    iteration: int = option_field(1, "self-rewarding iteration i (labels the pairs' source self-rewarding-M<i>)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iteration < 1 or self.judge_max_new_tokens < 1:
            raise ValueError("iteration and judge_max_new_tokens must be >= 1")


def parse_rubric_score(reply: str) -> float | None:
    """``Score: x`` with 0 <= x <= 5 (also ``x/5``) -> x; anything else -> None."""
    match = re.search(r"score\s*[:=]?\s*([0-5](?:\.\d+)?)\s*(?:/\s*5\b|points?\b)?", reply, re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    return value if 0.0 <= value <= 5.0 else None


class SelfRewarding(DPO):
    """Self-Rewarding Language Models: self-judged best vs worst sample, trained with DPO (Eq. 7 of DPO).

        loss = -log sigmoid(beta * h),  h = log pi/pi_ref (y_best) - log pi/pi_ref (y_worst)

    Worked example: as DPO, beta = 0.1 and h = 3 give 0.554355.

    Builder options: ``SelfRewardingOptions`` (``harness methods self_rewarding`` lists them).
    """

    name = "self_rewarding"
    citation = (
        "Yuan, Pang, Cho, Li, Sukhbaatar, Xu, Weston. Self-Rewarding Language Models. ICML 2024. "
        "arXiv:2401.10020"
    )
    pair_kinds = ("text",)
    needs_model = True
    builder_options = SelfRewardingOptions

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        return build_counted_pairs(
            self, context, self._chunk, counts=("judge", "logprob", "tie"), unit="prompt", pairs_file=PAIRS_FILE,
            summary="self_rewarding: %d pairs from %d prompts (scored by the judge: %d, by the log-prob fallback: "
                    "%d; no pair, all scores equal: %d)")

    def _chunk(self, model, chunk, seed: int, options) -> dict:
        """One chunk of prompts: sample, score, keep best vs worst; JSON for the journal."""
        answers = sample_responses(model, chunk, k=options["k"], max_new_tokens=options["max_new_tokens"],
                                   temperature=options["temperature"], top_p=options["top_p"], seed=seed)
        scores, scored_by = self._score(model, chunk, answers, options)
        pairs, counts = [], {"judge": 0, "logprob": 0, "tie": 0}
        for sample, cands, values, how in zip(chunk, answers, scores, scored_by):
            picked = best_and_worst(cands, values)
            if picked is None:
                counts["tie"] += 1
                continue
            counts[how] += 1
            best, worst = picked
            pairs.append(PreferencePair(
                id=sample.id, image=sample.image_name, prompt=sample.prompt, chosen=cands[best],
                rejected=cands[worst], kind="text", source=f"self-rewarding-M{options['iteration']}",
                extra={"scored_by": how, "chosen_score": values[best], "rejected_score": values[worst]}).as_dict())
        return {"pairs": pairs, "counts": counts}

    def _score(self, model, chunk, answers, options) -> tuple[list[list[float]], list[str]]:
        """Judge scores per prompt; a prompt with any unparseable reply is scored by mean log-prob instead."""
        from harness.models.base import GenerationConfig

        judged: list[list[float | None]] = [[None] * len(c) for c in answers]
        if options["judge"] == "self":
            flat = [(i, j) for i, cands in enumerate(answers) for j in range(len(cands))]
            prompts = [JUDGE_PROMPT.format(question=chunk[i].question or chunk[i].prompt, response=answers[i][j])
                       for i, j in flat]
            replies = model.generate([chunk[i].image for i, _ in flat], prompts,
                                     GenerationConfig(max_new_tokens=options["judge_max_new_tokens"]))
            for (i, j), reply in zip(flat, replies):
                judged[i][j] = parse_rubric_score(reply)
        scores, scored_by = [], []
        for i, values in enumerate(judged):
            if all(v is not None for v in values):
                scores.append([float(v) for v in values])
                scored_by.append("judge")
            else:
                rows = [(chunk[i].image, chunk[i].prompt, text) for text in answers[i]]
                scores.append(mean_logps(model, rows))
                scored_by.append("logprob")
        return scores, scored_by
