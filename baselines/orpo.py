"""ORPO: supervised NLL plus an odds-ratio preference term, with no reference model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.methods.base import LogProbs, LossOutput, Method

if TYPE_CHECKING:
    import torch


def log_odds(mean_logps: torch.Tensor) -> torch.Tensor:
    """``log(P / (1 - P))`` with ``P = exp(mean log-prob)``, stable near P = 1 (log1mexp)."""
    import torch

    x = mean_logps.clamp(max=-1e-6)
    log1mexp = torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))
    return x - log1mexp


class ORPO(Method):
    """Odds Ratio Preference Optimization (Hong, Lee, Thorne 2024, Eq. 6-7).

        loss = -log P(y_w|x) - lambda * log sigmoid(log odds(y_w|x) - log odds(y_l|x))

    with ``P(y|x) = exp(mean token log-prob)`` and ``odds = P / (1 - P)``. ``beta`` is the paper's lambda
    (named as in TRL). Rewards: ``beta`` times the mean log-probs, as TRL logs them.
    Worked example: mean log-probs -2.5 and -2.0, beta 0.1:
    log odds_w = -2.5 - log(1 - e^-2.5) = -2.414349, log odds_l = -2 - log(1 - e^-2) = -1.854587,
    ratio term = log(1 + e^0.559762) = 1.011705, loss = 2.5 + 0.1 * 1.011705 = 2.601171.
    """

    name = "orpo"
    citation = (
        "Hong, Lee, Thorne. ORPO: Monolithic Preference Optimization without Reference Model. EMNLP 2024. "
        "arXiv:2403.07691"
    )
    pair_kinds = ("text", "visual")
    reference_free = True
    defaults = {"beta": 0.1}
    hparam_help = {"beta": "lambda: weight of the odds-ratio term next to the chosen NLL"}

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        import torch.nn.functional as F

        beta = self.hparams["beta"]
        ratio = log_odds(policy.chosen_mean_logps) - log_odds(policy.rejected_mean_logps)
        odds_term = -F.logsigmoid(ratio)
        losses = -policy.chosen_mean_logps + beta * odds_term
        return LossOutput(
            losses,
            beta * policy.chosen_mean_logps.detach(),
            beta * policy.rejected_mean_logps.detach(),
            metrics={"log_odds_ratio": ratio.detach().mean(), "nll": -policy.chosen_mean_logps.detach().mean()},
        )
