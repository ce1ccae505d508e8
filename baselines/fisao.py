"""FiSAO: token-level rewards from the model's own vision side, used to weight a token-level DPO (Cui et al.).

FiSAO (Fine-Grained Self-Alignment Optimization) uses the VLLM's own visual encoder as a fine-grained
verifier: each generated token is rewarded by how well it aligns with the image, with no external data.

Pair building here:

1. the model samples ``k`` answers per training question;
2. each answer's tokens get a verifier score: the cosine similarity between the token's hidden state at
   ``layer`` (0 = the input embedding) and the image tokens' states at that layer (at layer 0: the image
   features after the model's projector), max over image tokens
   (``baselines._self_generated.token_image_similarity``, through the training core's encoder so the
   tokens are exactly the ones trained on);
3. the answer with the highest mean token score is chosen, the lowest rejected;
4. token weights from scores standardized over the whole pair set (z = (s - mean) / std, the set's mean
   acting as FiSAO's baseline score):
   chosen  w_t = clip(1 + alpha * z_t, weight_min, weight_max)   (well-grounded tokens pulled up harder)
   rejected w_t = clip(1 - alpha * z_t, weight_min, weight_max)  (poorly grounded tokens pushed down harder)
   stored in ``PreferencePair.extra["chosen_token_weights" / "rejected_token_weights"]``; ``FiSAO.token_weights``
   hands them to the training core (the method contract's per-token weights), which carries them through the
   batch into ``LogProbs.chosen_token_weights`` / ``rejected_token_weights``.

Loss: DPO with token-weighted log-ratios,

    h = sum_t w^w_t (log pi - log pi_ref)(y_w,t) - sum_t w^l_t (log pi - log pi_ref)(y_l,t)
    loss = -log sigmoid(beta * h)

which equals DPO when every weight is 1 (pairs without token weights train as plain DPO).

Departures, and why: the paper turns the verifier's token scores into +/- token rewards against baseline
scores estimated from correct and hallucinated tokens, and optimizes them with token-level PPO; the harness
trains every method through one offline preference core, so the token rewards become token weights in a
DPO over the model's own best/worst samples (the same information, used by a loss the core can run). The
image-text similarity is taken in the language model's space after the projector (the vision tower's own
CLIP text head is not part of a LLaVA checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from baselines._self_generated import (
    CandidateOptions,
    iter_samples,
    parsed_options,
    require_model,
    run_chunks,
    same_text,
    sample_responses,
    token_image_similarity,
)
from baselines.dpo import DPO, require_reference
from harness.core.errors import HarnessError
from harness.core.options import option_field
from harness.curation.preferences import PreferencePair, write_pairs
from harness.methods.base import LogProbs, LossOutput, PairContext

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PAIRS_FILE = "fisao_pairs.jsonl"
# where a FiSAO pair keeps its token weights (``PreferencePair.extra``), per side
WEIGHT_KEYS = {"chosen": "chosen_token_weights", "rejected": "rejected_token_weights"}


@dataclass
class FiSAOOptions(CandidateOptions):
    """FiSAO's pair-builder options (``--option KEY=VALUE``)."""

    layer: int = option_field(0, "hidden-state layer of the token-image similarity (0: input embeddings)")
    alpha: float = option_field(0.5, "slope of the token weights: 1 + alpha * z on the chosen, 1 - alpha * z on "
                                     "the rejected answer (z: the standardized similarity)")
    weight_min: float = option_field(0.0, "lower clip of the token weights")
    weight_max: float = option_field(2.0, "upper clip of the token weights")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0 or self.weight_min > self.weight_max:
            raise ValueError("needs alpha >= 0 and weight_min <= weight_max")


def token_weights(scores: list[float], mean: float, std: float, *, alpha: float, low: float, high: float,
                  sign: float) -> list[float]:
    """``clip(1 + sign * alpha * (s - mean) / std, low, high)`` per token (``sign`` +1 chosen, -1 rejected)."""
    std = std if std > 0 else 1.0
    return [min(max(1.0 + sign * alpha * (s - mean) / std, low), high) for s in scores]


def weighted_ratio(policy_tokens: torch.Tensor, reference_tokens: torch.Tensor, weights: torch.Tensor | None):
    """``sum_t w_t (log pi - log pi_ref)_t`` per row (token log-probs are zero outside the response)."""
    ratio = policy_tokens - reference_tokens
    return (ratio if weights is None else ratio * weights).sum(dim=1)


class FiSAO(DPO):
    """Token-weighted DPO with vision-grounding token weights (FiSAO's verifier; see the module docstring).

        loss = -log sigmoid(beta * (sum_t w^w_t r^w_t - sum_t w^l_t r^l_t)),  r_t = log pi_t - log pi_ref_t

    Worked example (tests/methods/test_fisao_loss.py): beta = 0.1; chosen r = (0.5, -1) with w = (2, 0.5),
    rejected r = (-1, 1) with w = (1.5, 0.5): h = (1 - 0.5) - (-1.5 + 0.5) = 1.5,
    loss = log(1 + e^-0.15) = 0.620957.

    Builder options: ``FiSAOOptions`` (``harness methods fisao`` lists them). Needs token-level
    reference log-probs, so it does not
    run with ``--ref-cache`` (the cache keeps sequence sums only).
    """

    name = "fisao"
    citation = (
        "Cui, Zhang, Zhou, Chen, Deng, Yao, Chua. Fine-Grained Verifiers: Preference Modeling as Next-token "
        "Prediction in Vision-Language Alignment (FiSAO). ICLR 2025. arXiv:2410.14148"
    )
    pair_kinds = ("text",)
    needs_model = True
    builder_options = FiSAOOptions

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        import torch.nn.functional as F

        reference = require_reference(self, reference)
        if reference.chosen_token_logps is None or policy.chosen_token_logps is None:
            raise HarnessError(f"method '{self.name}' needs token-level log-probs of the policy and the reference "
                               f"(the reference cache keeps sequence sums only: train without --ref-cache)")
        beta = self.hparams["beta"]
        chosen = weighted_ratio(policy.chosen_token_logps, reference.chosen_token_logps,
                                policy.chosen_token_weights)
        rejected = weighted_ratio(policy.rejected_token_logps, reference.rejected_token_logps,
                                  policy.rejected_token_weights)
        losses = -F.logsigmoid(beta * (chosen - rejected))
        return LossOutput(losses, beta * chosen.detach(), beta * rejected.detach())

    def token_weights(self, pair: PreferencePair) -> dict[str, list[float]] | None:
        """The pair's token weights, as ``build_pairs`` stores them in ``extra`` (``WEIGHT_KEYS``); None for a
        pair without them (it trains as plain DPO)."""
        given = {side: pair.extra[key] for side, key in WEIGHT_KEYS.items() if key in pair.extra}
        return given or None

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        import statistics

        options = parsed_options(self, context.options)
        model = require_model(self.name, context)
        samples = list(iter_samples(self.name, context))
        by_id = {sample.id: sample for sample in samples}
        picked: list[tuple] = []  # (sample, chosen, rejected, chosen scores, rejected scores)
        skipped = 0
        results = run_chunks(self.name, context, samples, options,
                                      lambda chunk, b: self._chunk(model, chunk, b, context.seed, options),
                                      unit="question")
        for result in results:
            picked.extend((by_id[p["id"]], p["chosen"], p["rejected"], p["chosen_scores"], p["rejected_scores"])
                          for p in result["picked"])
            skipped += result["skipped"]
        all_scores = [s for item in picked for s in (*item[3], *item[4])]
        mean = statistics.fmean(all_scores) if all_scores else 0.0
        std = statistics.pstdev(all_scores) if len(all_scores) > 1 else 1.0
        clip = {"alpha": options["alpha"], "low": options["weight_min"], "high": options["weight_max"]}
        pairs = [PreferencePair(
            id=sample.id, image=sample.image_name, prompt=sample.prompt, chosen=chosen, rejected=rejected,
            kind="text", source="fisao-vision-verifier",
            extra={WEIGHT_KEYS["chosen"]: token_weights(cs, mean, std, sign=1.0, **clip),
                   WEIGHT_KEYS["rejected"]: token_weights(rs, mean, std, sign=-1.0, **clip),
                   "chosen_grounding": sum(cs) / len(cs), "rejected_grounding": sum(rs) / len(rs)})
            for sample, chosen, rejected, cs, rs in picked]
        log.info("fisao: %d pairs from %d questions (%d without distinct samples); token scores mean %.4f std %.4f",
                 len(pairs), len(samples), skipped, mean, std)
        write_pairs(Path(context.output_dir) / PAIRS_FILE, pairs)
        return pairs

    def _chunk(self, model, chunk, b: int, seed: int, options) -> dict:
        """One chunk: sample, score every response token against the image, keep the most and least
        grounded candidates with their token scores; JSON for the journal (weights need all chunks' scores)."""
        answers = sample_responses(model, chunk, k=options["k"], max_new_tokens=options["max_new_tokens"],
                                   temperature=options["temperature"], top_p=options["top_p"], seed=seed * 1000 + b)
        rows = [(s.image, s.prompt, text) for s, cands in zip(chunk, answers) for text in cands]
        scores = token_image_similarity(model, rows, layer=options["layer"])
        picked, skipped, at = [], 0, 0
        for sample, cands in zip(chunk, answers):
            per = scores[at:at + len(cands)]
            at += len(cands)
            means = [sum(s) / max(len(s), 1) for s in per]
            best = max(range(len(cands)), key=lambda i: means[i])
            worst = min(range(len(cands)), key=lambda i: means[i])
            if means[best] == means[worst] or same_text(cands[best], cands[worst]):
                skipped += 1
                continue
            picked.append({"id": sample.id, "chosen": cands[best], "rejected": cands[worst],
                           "chosen_scores": per[best], "rejected_scores": per[worst]})
        return {"picked": picked, "skipped": skipped}
