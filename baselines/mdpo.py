"""CoPO and mDPO: preference on the image as well as on the text (Wang et al. 2024, arXiv:2406.11839).

DPO on multimodal pairs can learn a text-only preference and ignore the image. mDPO adds a conditional
preference (CoPO): the same chosen answer should be likelier with the real image ``m_w`` than with a
corrupted one ``m_l``; and an anchor that keeps the chosen reward positive.

Both methods request the extra forward row ``"chosen_on_rejected_image"`` (the chosen text scored with
the pair's rejected image). For visual pairs that image is the pair's own noised image; for text pairs the
core asks ``corrupt_image`` for one: a random crop keeping at most ``CROP_MAX_AREA`` of the image, as
mDPO builds its hard-negative image by heavy random cropping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baselines.dpo import DPO, dpo_rewards, log_ratios, require_reference
from harness.core.errors import HarnessError
from harness.core.options import Range
from harness.methods.base import LogProbs, LossOutput, Method

if TYPE_CHECKING:
    import torch

MDPO_CITATION = (
    "Wang, Zhou, Huang, Xu, Zhang, Poon, Chen. mDPO: Conditional Preference Optimization for Multimodal "
    "Large Language Models. EMNLP 2024. arXiv:2406.11839"
)
CONDITIONAL_ROW = "chosen_on_rejected_image"
CROP_MAX_AREA = 0.2


def conditional_ratio(method: Method, policy: LogProbs, reference: LogProbs) -> torch.Tensor:
    """``log pi(y_w|m_l,q) / pi_ref(y_w|m_l,q)``: the chosen answer on the corrupted image."""
    if CONDITIONAL_ROW not in policy.extra or CONDITIONAL_ROW not in reference.extra:
        raise HarnessError(
            f"method '{method.name}' needs the '{CONDITIONAL_ROW}' log-probs from the training core (extra_rows)"
        )
    return policy.extra[CONDITIONAL_ROW] - reference.extra[CONDITIONAL_ROW]


def random_crop(image: Any, *, seed: int, max_area: float = CROP_MAX_AREA) -> Any:
    """A random crop covering between 1% and ``max_area`` of the image (deterministic per seed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width, height = image.size
    area = rng.uniform(0.01, max_area)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    crop_w = int(np.clip(round(width * np.sqrt(area * aspect)), 1, width))
    crop_h = int(np.clip(round(height * np.sqrt(area / aspect)), 1, height))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return image.crop((left, top, left + crop_w, top + crop_h))


class CoPO(Method):
    """Conditional preference optimization alone (mDPO, Sec. 3, the CoPO objective).

        loss = -log sigmoid(beta * log pi(y_w|m_w,q)/pi_ref(y_w|m_w,q) - beta * log pi(y_w|m_l,q)/pi_ref(y_w|m_l,q))

    Rewards: chosen = beta * chosen log-ratio; rejected = beta * log-ratio of the chosen text on the
    corrupted image (the response it is contrasted with). The rejected text is not used.
    Worked example: beta = 0.1, chosen ratio 2, conditional ratio -10 - -9 = -1: loss = -log sigmoid(0.3)
    = 0.554355.
    """

    name = "copo"
    citation = MDPO_CITATION
    pair_kinds = ("text", "visual")
    extra_rows = (CONDITIONAL_ROW,)
    defaults = {"beta": 0.1}
    hparam_help = {"beta": DPO.hparam_help["beta"]}

    def corrupt_image(self, image: Any, *, seed: int) -> Any:
        return random_crop(image, seed=seed)

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        import torch.nn.functional as F

        reference = require_reference(self, reference)
        beta = self.hparams["beta"]
        chosen_ratio, _ = log_ratios(policy, reference)
        image_ratio = conditional_ratio(self, policy, reference)
        losses = -F.logsigmoid(beta * (chosen_ratio - image_ratio))
        return LossOutput(losses, *dpo_rewards(beta, chosen_ratio, image_ratio))


class MDPO(CoPO):
    """mDPO = DPO + CoPO + reward anchor (Wang et al. 2024, Sec. 3, the full mDPO objective).

        loss = -log sigmoid(beta h) - log sigmoid(beta h_img) + anchor
        anchor = -log sigmoid(beta * log pi(y_w|m_w,q)/pi_ref(y_w|m_w,q) - delta)     (anchor="sigmoid")
               =  max(0, delta - beta * log pi(y_w|m_w,q)/pi_ref(y_w|m_w,q))          (anchor="hinge")

    ``h`` is DPO's text margin, ``h_img`` the CoPO margin. The sigmoid anchor with delta = 0 is the paper's
    and the released trainer's; the hinge anchor is offered for ablations. Rewards are DPO's.
    Worked example: beta 0.1, chosen ratio 2, rejected ratio -1, conditional ratio -1, delta 0:
    0.554355 + 0.554355 + log(1 + e^-0.2) = 0.554355 * 2 + 0.598139 = 1.706849.
    """

    name = "mdpo"
    defaults = {"beta": 0.1, "delta": 0.0, "anchor": "sigmoid"}
    hparam_help = {
        "beta": DPO.hparam_help["beta"],
        "delta": "anchor threshold: the chosen reward is pushed above delta",
        "anchor": "'sigmoid' (the paper's -log sigmoid(r_w - delta)) or 'hinge' (max(0, delta - r_w))",
    }
    # delta is a threshold on the chosen reward, which may be negative: any finite number
    hparam_ranges = {**CoPO.hparam_ranges, "delta": Range()}

    def __init__(self, **hparams):
        super().__init__(**hparams)
        if self.hparams["anchor"] not in ("sigmoid", "hinge"):
            raise HarnessError(f"method 'mdpo': anchor must be 'sigmoid' or 'hinge', got {self.hparams['anchor']!r}")

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        import torch
        import torch.nn.functional as F

        reference = require_reference(self, reference)
        beta, delta = self.hparams["beta"], self.hparams["delta"]
        chosen_ratio, rejected_ratio = log_ratios(policy, reference)
        image_ratio = conditional_ratio(self, policy, reference)
        dpo_term = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
        copo_term = -F.logsigmoid(beta * (chosen_ratio - image_ratio))
        if self.hparams["anchor"] == "sigmoid":
            anchor_term = -F.logsigmoid(beta * chosen_ratio - delta)
        else:
            anchor_term = torch.relu(delta - beta * chosen_ratio)
        return LossOutput(
            dpo_term + copo_term + anchor_term,
            *dpo_rewards(beta, chosen_ratio, rejected_ratio),
            metrics={
                "dpo_loss": dpo_term.detach().mean(),
                "copo_loss": copo_term.detach().mean(),
                "anchor_loss": anchor_term.detach().mean(),
            },
        )
