"""The ``mmedpo`` method: weighted DPO over pooled textual and visual pairs.

Zhu, Xia, Li, Zhu, Wang, Yao. "MMedPO: Aligning Medical Vision-Language Models with Clinical-Aware
Multimodal Preference Optimization", ICML 2025, arXiv 2412.06141, Eq. 6:

    L = - E_{(x, x*, y_w, y_l, s')} [ s' · log σ( β log πθ(y_w|x)/π_ref(y_w|x) − β log πθ(y_l|x*)/π_ref(y_l|x*) ) ]

with x* = x for textual pairs and y_l = y_w for visual pairs. ``loss`` returns the *unweighted* per-sample
term −log σ(·); the shared training core multiplies by the pair weights s' and averages
(``harness.methods.base.LossOutput``), so with all weights 1 and text pairs only this is exactly DPO.
The weights s' come from curation (``mmedpo.curate``: clinical-relevance scores, normalized).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from harness.methods.base import LogProbs, LossOutput, Method
from mmedpo.config import ABLATIONS, curation_options  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import torch

CITATION = (
    "Zhu, Xia, Li, Zhu, Wang, Yao. MMedPO: Aligning Medical Vision-Language Models with Clinical-Aware "
    "Multimodal Preference Optimization. ICML 2025. arXiv:2412.06141"
)

class MMedPO(Method):
    name: ClassVar[str] = "mmedpo"
    citation: ClassVar[str] = CITATION
    pair_kinds: ClassVar[tuple[str, ...]] = ("text", "visual")
    reference_free: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {"beta": 0.1}
    hparam_help: ClassVar[dict[str, str]] = {
        "beta": "β: scale of the implicit reward log πθ/π_ref (paper: 0.1)",
    }

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        """Per-sample −log σ(β(Δ_chosen − Δ_rejected)); the core applies the weights s' (module docstring)."""
        import torch.nn.functional as F

        if reference is None:
            from harness.errors import HarnessError

            raise HarnessError("mmedpo needs reference log-probabilities (it is not reference-free)")
        beta = float(self.hparams["beta"])
        chosen = beta * (policy.chosen_logps - reference.chosen_logps)
        rejected = beta * (policy.rejected_logps - reference.rejected_logps)
        losses = -F.logsigmoid(chosen - rejected)
        return LossOutput(losses, chosen.detach(), rejected.detach(),
                          metrics={"weight_mean": weights.detach().float().mean()})

    @classmethod
    def builder_needs_model(cls, options: dict[str, Any] | None = None) -> bool:
        """Sampling the target model (sample-and-judge) or its saliency needs it loaded; the defaults do not."""
        from mmedpo.config import CurationConfig

        config = CurationConfig.from_options(curation_options(options))
        return config.resolved_generator() == "sample-and-judge" or config.localizer == "saliency"

    def build_pairs(self, context: Any) -> list:
        """Curate MMedPO's pooled pairs (``mmedpo.curate``); ``context.options`` are curation options."""
        from mmedpo.config import CurationConfig
        from mmedpo.curate import build_mmedpo_pairs


        return build_mmedpo_pairs(context, CurationConfig.from_options(curation_options(context.options)))
