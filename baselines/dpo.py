"""DPO and the losses that share its log-ratio margin: IPO, robust DPO, cDPO, hinge (SLiC) and DPO+NLL (RPO).

All of them read the summed response log-probabilities of the policy and the reference and form

    h = log pi(y_w|x) / pi_ref(y_w|x) - log pi(y_l|x*) / pi_ref(y_l|x*)

(``x* = x`` for text pairs; the rejected image for visual pairs). Each returns one unweighted loss per
pair: the training core applies the pair weights as ``mean(w_i * loss_i)``. Rewards are the implicit
DPO rewards ``beta * (log pi - log pi_ref)``, detached. The dpo, ipo, hinge and robust losses equal TRL's
``DPOTrainer`` (``loss_type`` sigmoid, ipo, hinge, robust) on the same log-probs; tests/methods checks it.

torch is imported inside the losses so that listing methods (``harness methods``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.core.errors import HarnessError
from harness.core.options import Range
from harness.methods.base import LogProbs, LossOutput, Method

if TYPE_CHECKING:
    import torch

DPO_CITATION = (
    "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn. Direct Preference Optimization: Your Language Model "
    "is Secretly a Reward Model. NeurIPS 2023. arXiv:2305.18290"
)


def require_reference(method: Method, reference: LogProbs | None) -> LogProbs:
    if reference is None:
        raise HarnessError(f"method '{method.name}' needs reference log-probs (it is not reference-free)")
    return reference


def log_ratios(policy: LogProbs, reference: LogProbs) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi/pi_ref`` of the chosen and of the rejected responses (summed over tokens)."""
    return policy.chosen_logps - reference.chosen_logps, policy.rejected_logps - reference.rejected_logps


def dpo_rewards(beta: float, chosen_ratio: torch.Tensor, rejected_ratio: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


class DPO(Method):
    """Direct Preference Optimization, sigmoid loss (Rafailov et al. 2023, Eq. 7).

        loss = -log sigmoid(beta * h)

    Worked example (tests/methods): beta = 0.1, h = (-10 - -12) - (-14 - -13) = 3, so
    loss = -log sigmoid(0.3) = log(1 + e^-0.3) = 0.554355.
    """

    name = "dpo"
    citation = DPO_CITATION
    pair_kinds = ("text", "visual")
    defaults = {"beta": 0.1}
    hparam_help = {"beta": "inverse temperature of the implicit reward (KL strength)"}

    def per_sample(self, margin: torch.Tensor, policy: LogProbs, reference: LogProbs) -> torch.Tensor:
        import torch.nn.functional as F

        return -F.logsigmoid(self.hparams["beta"] * margin)

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        reference = require_reference(self, reference)
        chosen_ratio, rejected_ratio = log_ratios(policy, reference)
        losses = self.per_sample(chosen_ratio - rejected_ratio, policy, reference)
        chosen_rewards, rejected_rewards = dpo_rewards(self.hparams["beta"], chosen_ratio, rejected_ratio)
        return LossOutput(losses, chosen_rewards, rejected_rewards)


class IPO(DPO):
    """Identity Preference Optimization (Azar et al. 2024, Eq. 17), with TRL's per-token averaging.

        loss = (h_avg - 1 / (2 * beta))^2,   h_avg = ratio_w / |y_w| - ratio_l / |y_l|

    where ``ratio = log pi/pi_ref`` summed over the response and ``|y|`` its token count. The averaging is
    TRL's (confirmed with the IPO authors, per TRL's source); ``beta`` is the paper's tau.
    Worked example: beta = 0.1, ratios 2 over 4 tokens and -1 over 2 tokens: h_avg = 0.5 + 0.5 = 1,
    loss = (1 - 5)^2 = 16.
    """

    name = "ipo"
    citation = (
        "Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos. A General Theoretical Paradigm to Understand "
        "Learning from Human Preferences. AISTATS 2024. arXiv:2310.12036"
    )
    hparam_help = {"beta": "regularization tau: the target margin is 1 / (2 * beta)"}

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        reference = require_reference(self, reference)
        chosen_ratio, rejected_ratio = log_ratios(policy, reference)
        beta = self.hparams["beta"]
        margin = chosen_ratio / policy.chosen_tokens.clamp(min=1) - rejected_ratio / policy.rejected_tokens.clamp(min=1)
        losses = (margin - 1.0 / (2.0 * beta)) ** 2
        return LossOutput(losses, *dpo_rewards(beta, chosen_ratio, rejected_ratio))


class RobustDPO(DPO):
    """Provably robust DPO for noisy labels (Chowdhury, Kini, Natarajan 2024, the unbiased rDPO loss).

        loss = ((1 - eps) * -log sigmoid(beta h) - eps * -log sigmoid(-beta h)) / (1 - 2 eps)

    an unbiased estimate of the clean DPO loss when each label is flipped with probability eps < 1/2.
    Worked example: beta = 0.1, h = 3, eps = 0.1: (0.9 * 0.554355 - 0.1 * 0.854355) / 0.8 = 0.516855.
    """

    name = "robust"
    citation = (
        "Chowdhury, Kini, Natarajan. Provably Robust DPO: Aligning Language Models with Noisy Feedback. "
        "ICML 2024. arXiv:2403.00409"
    )
    defaults = {"beta": 0.1, "label_smoothing": 0.1}
    hparam_help = {
        "beta": DPO.hparam_help["beta"],
        "label_smoothing": "assumed probability eps in [0, 0.5) that a preference label is flipped",
    }
    # eps = 0.5 divides by 1 - 2 eps = 0; eps > 0.5 trusts the flipped label more than the given one
    hparam_ranges = {**DPO.hparam_ranges, "label_smoothing": Range(ge=0, lt=0.5)}

    def per_sample(self, margin, policy, reference):
        import torch.nn.functional as F

        beta, eps = self.hparams["beta"], self.hparams["label_smoothing"]
        clean = -F.logsigmoid(beta * margin)
        flipped = -F.logsigmoid(-beta * margin)
        return ((1 - eps) * clean - eps * flipped) / (1 - 2 * eps)


class ConservativeDPO(RobustDPO):
    """Conservative DPO (cDPO): DPO against soft labels (Mitchell 2023, "A note on DPO with noisy preferences").

        loss = (1 - eps) * -log sigmoid(beta h) + eps * -log sigmoid(-beta h)

    the cross-entropy with target probability 1 - eps (older TRL's label-smoothed sigmoid loss).
    Worked example: beta = 0.1, h = 3, eps = 0.1: 0.9 * 0.554355 + 0.1 * 0.854355 = 0.584355.
    """

    name = "cdpo"
    citation = (
        "Mitchell. A note on DPO with noisy preferences and relationship to IPO. Technical note, 2023 "
        "(https://ericmitchell.ai/cdpo.pdf); loss of Rafailov et al. arXiv:2305.18290 with label smoothing"
    )
    hparam_help = {
        "beta": DPO.hparam_help["beta"],
        "label_smoothing": "probability eps in [0, 0.5) given to the flipped preference (soft label 1 - eps)",
    }

    def per_sample(self, margin, policy, reference):
        import torch.nn.functional as F

        beta, eps = self.hparams["beta"], self.hparams["label_smoothing"]
        return -(1 - eps) * F.logsigmoid(beta * margin) - eps * F.logsigmoid(-beta * margin)


class Hinge(DPO):
    """Hinge (calibration) loss of SLiC-HF (Zhao et al. 2023) on the reference-normalized margin, as in TRL.

        loss = max(0, 1 - beta * h)

    SLiC's calibration loss is ``max(0, delta - log pi(y_w) + log pi(y_l))``; with the reference log-ratio
    and beta = 1/delta this is TRL's ``hinge`` loss (up to the factor delta).
    Worked example: beta = 0.1, h = 3: max(0, 1 - 0.3) = 0.7.
    """

    name = "hinge"
    citation = (
        "Zhao, Joshi, Liu, Khalman, Saleh, Liu. SLiC-HF: Sequence Likelihood Calibration with Human Feedback. "
        "arXiv:2305.10425"
    )
    hparam_help = {"beta": "inverse margin: the loss is zero once beta * h >= 1"}

    def per_sample(self, margin, policy, reference):
        import torch

        return torch.relu(1 - self.hparams["beta"] * margin)


class DPONLL(DPO):
    """DPO plus a length-normalized NLL term on the chosen response: RPO (Pang et al. 2024, Sec. 2).

        loss = -log sigmoid(beta h) - alpha * log pi(y_w|x) / |y_w|

    alpha weighs the NLL term as in TRL's ``rpo_alpha``; the paper writes ``NLL + alpha * DPO`` instead,
    which is the same loss for its alpha = 1 (the default here).

    Worked example: beta = 0.1, h = 3, alpha = 1, chosen mean log-prob -10/4 = -2.5:
    loss = 0.554355 + 2.5 = 3.054355.
    """

    name = "dpo_nll"
    citation = (
        "Pang, Yuan, Cho, He, Sukhbaatar, Weston. Iterative Reasoning Preference Optimization. NeurIPS 2024. "
        "arXiv:2404.19733"
    )
    defaults = {"beta": 0.1, "alpha": 1.0}
    hparam_help = {"beta": DPO.hparam_help["beta"], "alpha": "weight of the chosen response's per-token NLL"}
    hparam_ranges = {**DPO.hparam_ranges, "alpha": Range(ge=0)}  # a negative weight would reward the NLL

    def per_sample(self, margin, policy, reference):
        return super().per_sample(margin, policy, reference) - self.hparams["alpha"] * policy.chosen_mean_logps
