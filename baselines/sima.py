"""SIMA: self-improvement with an in-context self-critic over the model's own responses (Wang et al. 2024).

Pair building (SIMA Sec. 3): for each training question the model writes a greedy response and a sampled
one; the SAME model, as an in-context critic, compares the two given the ground truth and three visual
metrics, and the better response becomes the chosen one; the loss is DPO.

SIMA's metrics are object description, relationship and attribute accuracy on natural images; here they
are read clinically:

- finding presence (the finding is asserted or denied as in the ground truth; yes/no for closed questions),
- location / laterality (left, right, upper, bilateral...),
- attribute / severity (size, severity, shape).

Offline, the critic is the model itself prompted with the metrics and the ground truth; it must answer
``BETTER: A`` or ``BETTER: B``. When the reply does not parse (usual for a small or untrained model) the
deterministic fallback critic scores both responses on the same three metrics by word rules against the
ground truth (``baselines._self_generated.clinical_metrics``; ties broken by token F1, then by character
similarity to the ground truth) and picks the higher.
Each pair records ``extra["critic"]`` (``self`` or ``rules``); the counts are logged. ``critic=rules`` skips
the self-critic.

Departures, and why: the paper's critic gets in-context examples of critiques; the harness has no curated
medical critiques to show, so the prompt states the metrics and the ground truth instead. The greedy answer
is always shown as A (SIMA's order); pairs whose two responses are the same text are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baselines._self_generated import (
    SamplingOptions,
    build_counted_pairs,
    char_similarity,
    clinical_metrics,
    same_text,
    sample_responses,
    token_f1,
)
from baselines.dpo import DPO
from harness.core.options import option_field
from harness.curation.preferences import PreferencePair
from harness.methods.base import PairContext

PAIRS_FILE = "sima_pairs.jsonl"

CRITIC_PROMPT = """You are a critic comparing two answers to a question about this medical image.
Judge them against the ground-truth answer on three metrics:
1. Finding presence: does the answer assert or deny the findings the ground truth does, without inventing others?
2. Location and laterality: are the findings placed on the correct side and region?
3. Attributes and severity: are size, severity and shape described as in the ground truth?

Question: {question}
Ground-truth answer: {answer}
Answer A: {a}
Answer B: {b}

Which answer is better on these metrics? Reply with exactly one line: BETTER: A or BETTER: B"""


@dataclass
class SIMAOptions(SamplingOptions):
    """SIMA's pair-builder options (``--option KEY=VALUE``); temperature and top_p are the sampled answer's."""

    critic: str = option_field("self", "'self': the model critiques greedy vs sampled answer, falling back to the "
                                       "rule critic when its reply does not parse; 'rules': the rule critic only",
                               choices=("self", "rules"))
    critic_max_new_tokens: int = option_field(16, "longest critic reply, in tokens")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic_max_new_tokens < 1:
            raise ValueError("critic_max_new_tokens must be >= 1")


def parse_better(reply: str) -> int | None:
    """``BETTER: A`` -> 0, ``BETTER: B`` -> 1 (also 1/2); else None."""
    match = re.search(r"better\s*[:=]\s*\(?([ab12])\b", reply, re.IGNORECASE)
    if not match:
        return None
    return 0 if match.group(1).lower() in ("a", "1") else 1


def rule_critic(a: str, b: str, answer: str, answer_type: str) -> int | None:
    """The deterministic fallback: 0 if A is better, 1 if B is, None on a full tie.

    Keys, in order: the sum of the three metrics, token F1, character similarity to the ground truth.
    """
    key_a = (sum(clinical_metrics(a, answer, answer_type).values()), token_f1(a, answer), char_similarity(a, answer))
    key_b = (sum(clinical_metrics(b, answer, answer_type).values()), token_f1(b, answer), char_similarity(b, answer))
    if key_a == key_b:
        return None
    return 0 if key_a > key_b else 1


class SIMA(DPO):
    """SIMA's self-critic-picked pair (greedy vs sampled response), trained with DPO (DPO Eq. 7).

        loss = -log sigmoid(beta * h),  h = log pi/pi_ref (y_better) - log pi/pi_ref (y_worse)

    Worked example: as DPO, beta = 0.1 and h = 3 give 0.554355.

    Builder options: ``SIMAOptions`` (``harness methods sima`` lists them).
    """

    name = "sima"
    citation = (
        "Wang, Chen, Wang, Zhou, Zhou, Yao, Zhou, Goldstein, Bhatia, Huang, Xiao. Enhancing Visual-Language "
        "Modality Alignment in Large Vision Language Models via Self-Improvement (SIMA). arXiv:2405.15973"
    )
    pair_kinds = ("text",)
    needs_model = True
    builder_options = SIMAOptions

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        return build_counted_pairs(
            self, context, self._chunk, counts=("self", "rules", "same"), unit="question", pairs_file=PAIRS_FILE,
            summary="sima: %d pairs from %d questions (self-critic: %d, rule fallback: %d; no pair, responses "
                    "identical or tied: %d)")

    def _chunk(self, model, chunk, seed: int, options) -> dict:
        """One chunk: greedy vs sampled answer, judged by the self-critic (or the rules); JSON for the journal."""
        from harness.models.base import GenerationConfig

        gen = {"max_new_tokens": options["max_new_tokens"], "temperature": options["temperature"],
               "top_p": options["top_p"], "k": 1}
        greedy = sample_responses(model, chunk, greedy=True, seed=0, **gen)
        sampled = sample_responses(model, chunk, seed=seed, **gen)
        verdicts: list[int | None] = [None] * len(chunk)
        if options["critic"] == "self":
            prompts = [CRITIC_PROMPT.format(question=s.question or s.prompt, answer=s.answer, a=g[0], b=r[0])
                       for s, g, r in zip(chunk, greedy, sampled)]
            replies = model.generate([s.image for s in chunk], prompts,
                                     GenerationConfig(max_new_tokens=options["critic_max_new_tokens"]))
            verdicts = [parse_better(reply) for reply in replies]
        pairs, counts = [], {"self": 0, "rules": 0, "same": 0}
        for sample, g, r, verdict in zip(chunk, greedy, sampled, verdicts):
            a, b_text = g[0], r[0]
            if same_text(a, b_text):
                counts["same"] += 1
                continue
            critic = "self"
            if verdict is None:
                critic, verdict = "rules", rule_critic(a, b_text, sample.answer, sample.answer_type)
            if verdict is None:
                counts["same"] += 1
                continue
            counts[critic] += 1
            chosen, rejected = (a, b_text) if verdict == 0 else (b_text, a)
            pairs.append(PreferencePair(
                id=sample.id, image=sample.image_name, prompt=sample.prompt, chosen=chosen, rejected=rejected,
                kind="text", source=f"sima-{critic}-critic",
                extra={"critic": critic, "chosen_is_greedy": verdict == 0}).as_dict())
        return {"pairs": pairs, "counts": counts}
