"""DPO-Shift: DPO with the rejected log-ratio scaled down (Yang et al. 2025, arXiv:2502.07599).

    loss = -log sigmoid(beta * log pi(y_w|x)/pi_ref(y_w|x) - shift * beta * log pi(y_l|x)/pi_ref(y_l|x))

With ``shift`` < 1 the rejected term pulls less, which counters DPO's tendency to lower the chosen
response's likelihood; ``shift`` = 1 is DPO. Like every method, the loss is per sample and unweighted:
the harness's training core applies the pair weights.
"""

from __future__ import annotations

from typing import Any

from harness.core.errors import HarnessError
from harness.core.options import Range
from harness.methods import LogProbs, LossOutput, Method


class DPOShift(Method):
    """Worked example: beta 0.1, chosen log-ratio 2, rejected log-ratio -1, shift 0.5:
    -log sigmoid(0.2 + 0.05) = log(1 + e^-0.25) = 0.575939.
    """

    name = "dpo_shift"
    citation = (
        "Yang, Jiang, Zhang, Zhao, Li. DPO-Shift: Shifting the Distribution of Direct Preference "
        "Optimization. arXiv:2502.07599"
    )
    pair_kinds = ("text", "visual")
    defaults = {"beta": 0.1, "shift": 0.75}
    hparam_help = {
        "beta": "inverse temperature of the implicit reward",
        "shift": "scale in (0, 1] of the rejected log-ratio (1 gives DPO)",
    }
    hparam_ranges = {"beta": Range(gt=0), "shift": Range(gt=0, le=1)}  # checked before any model loads

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: Any) -> LossOutput:
        import torch.nn.functional as F

        if reference is None:
            raise HarnessError("method 'dpo_shift' needs reference log-probs")
        beta, shift = self.hparams["beta"], self.hparams["shift"]
        chosen = policy.chosen_logps - reference.chosen_logps
        rejected = policy.rejected_logps - reference.rejected_logps
        losses = -F.logsigmoid(beta * chosen - shift * beta * rejected)
        return LossOutput(losses, beta * chosen.detach(), beta * rejected.detach())
