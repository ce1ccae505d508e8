"""Supervised fine-tuning: the chosen (reference) response's negative log-likelihood.

The one definition of SFT in the harness: the registered ``sft`` method (``harness train --method sft``),
``harness sft`` and the tiny model's training all use this class, through the shared training core
(``harness.experiments.sft.train_sft`` calls ``harness.training.train_preference`` with it). The paper's protocol trains every
preference method from an SFT model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from harness.methods.base import LogProbs, LossOutput, Method

if TYPE_CHECKING:
    import torch


class SFT(Method):
    """Per-sample mean token negative log-likelihood of the chosen response.

        loss_i = -(1 / |y_i|) * sum_t log pi(y_i,t | x_i, y_i,<t)

    Each sample's loss is averaged over its own tokens (so each sample counts once, and the core's
    ``mean(w_i * loss_i)`` can weight samples). Only the chosen fields of ``policy`` are read: the method
    is not ``paired``, so its batches carry no rejected rows, and it trains on pairs of every kind (the
    chosen response of a preference pair is a supervised example too). Rewards: the chosen mean log-prob
    (for logging); rejected rewards are zero.
    Worked example: a 4-token answer with summed log-prob -10 has loss 2.5.
    """

    name: ClassVar[str] = "sft"
    citation: ClassVar[str] = (
        "Ouyang et al. Training language models to follow instructions with human feedback. NeurIPS 2022. "
        "arXiv:2203.02155 (supervised fine-tuning stage)"
    )
    pair_kinds: ClassVar[tuple[str, ...]] = ("sft",)
    paired: ClassVar[bool] = False
    reference_free: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}

    def trains_on(self, pair: Any) -> bool:
        return True

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        losses = -policy.chosen_mean_logps
        rewards = policy.chosen_mean_logps.detach()
        return LossOutput(losses, rewards, rewards.new_zeros(rewards.shape))
