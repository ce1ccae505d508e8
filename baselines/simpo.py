"""SimPO: reference-free, length-normalized preference optimization with a target margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.core.options import Range
from harness.methods.base import LogProbs, LossOutput, Method

if TYPE_CHECKING:
    import torch


class SimPO(Method):
    """Simple Preference Optimization (Meng, Xia, Chen 2024, Eq. 6).

        loss = -log sigmoid(beta / |y_w| * log pi(y_w|x) - beta / |y_l| * log pi(y_l|x) - gamma)

    No reference model. Rewards are ``beta`` times the mean token log-probs. The paper tunes beta in
    [2, 2.5] and reports gamma / beta around 0.5; the defaults follow (beta 2, gamma 1).
    Worked example: mean log-probs -10/4 = -2.5 and -14/7 = -2.0, beta 2, gamma 1:
    z = 2 * (-0.5) - 1 = -2, loss = log(1 + e^2) = 2.126928.
    """

    name = "simpo"
    citation = (
        "Meng, Xia, Chen. SimPO: Simple Preference Optimization with a Reference-Free Reward. NeurIPS 2024. "
        "arXiv:2405.14734"
    )
    pair_kinds = ("text", "visual")
    reference_free = True
    defaults = {"beta": 2.0, "gamma": 1.0}
    hparam_help = {
        "beta": "scale of the length-normalized reward",
        "gamma": "target reward margin (in reward units, not divided by beta)",
    }
    hparam_ranges = {**Method.hparam_ranges, "gamma": Range(ge=0)}  # a margin: 0 is SimPO without one

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        import torch.nn.functional as F

        beta = self.hparams["beta"]
        chosen, rejected = beta * policy.chosen_mean_logps, beta * policy.rejected_mean_logps
        losses = -F.logsigmoid(chosen - rejected - self.hparams["gamma"])
        return LossOutput(losses, chosen.detach(), rejected.detach())
