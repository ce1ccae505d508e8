"""The ``mmedpo`` method: weighted DPO over pooled textual and visual pairs.

Zhu, Xia, Li, Zhu, Wang, Yao. "MMedPO: Aligning Medical Vision-Language Models with Clinical-Aware
Multimodal Preference Optimization", ICML 2025, arXiv 2412.06141, Eq. 6:

    L = - E_{(x, x*, y_w, y_l, s')} [ s' · log σ( β log πθ(y_w|x)/π_ref(y_w|x) − β log πθ(y_l|x*)/π_ref(y_l|x*) ) ]

with x* = x for textual pairs and y_l = y_w for visual pairs. ``loss`` returns the *unweighted* per-sample
term −log σ(·); the shared training core multiplies by the pair weights s' and averages
(``harness.methods.base.LossOutput``), so with all weights 1 and text pairs only this is exactly DPO.
The weights s' come from curation (``mmedpo.curate``: clinical-relevance scores, normalized).

So the method is DPO (``baselines.dpo.DPO``) plus what MMedPO adds: the weights (logged as ``weight_mean``)
and its pair builder, whose options are ``mmedpo.config.CurationConfig`` plus ``ablation``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from baselines.dpo import DPO
from harness.core.options import check_known, parse_options
from harness.methods.base import LogProbs, LossOutput
from mmedpo.config import ABLATIONS, CurationConfig, curation_options

if TYPE_CHECKING:
    import torch

CITATION = (
    "Zhu, Xia, Li, Zhu, Wang, Yao. MMedPO: Aligning Medical Vision-Language Models with Clinical-Aware "
    "Multimodal Preference Optimization. ICML 2025. arXiv:2412.06141"
)


class MMedPO(DPO):
    name: ClassVar[str] = "mmedpo"
    citation: ClassVar[str] = CITATION
    pair_kinds: ClassVar[tuple[str, ...]] = ("text", "visual")
    defaults: ClassVar[dict[str, Any]] = {"beta": 0.1}
    hparam_help: ClassVar[dict[str, str]] = {
        "beta": "β: scale of the implicit reward log πθ/π_ref (paper: 0.1)",
    }
    builder_options: ClassVar[type] = CurationConfig

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        """DPO's per-sample −log σ(β h); the core applies the weights s' (module docstring)."""
        out = super().loss(policy, reference, weights)
        out.metrics["weight_mean"] = weights.detach().float().mean()
        return out

    @classmethod
    def parse_builder_options(cls, options: dict[str, Any] | None) -> CurationConfig:
        """``CurationConfig`` from curation options, after expanding ``ablation`` (names of the paper's
        ablations, comma-separated: ``no-visual,no-weights``) into the options it stands for."""
        owner = f"method '{cls.name}'"
        options = dict(options or {})
        check_known(owner, options, [f.name for f in dataclasses.fields(CurationConfig)] + ["ablation"])
        return parse_options(owner, CurationConfig, curation_options(options))

    @classmethod
    def builder_options_help(cls) -> list[dict[str, Any]]:
        ablation = {"name": "ablation", "default": [], "choices": list(ABLATIONS),
                    "help": "the paper's ablations (Sec. 4.3), comma-separated; each sets curation options: "
                            + "; ".join(f"{k}: {', '.join(f'{o}={v}' for o, v in s.items())}"
                                        for k, s in ABLATIONS.items())}
        return [*super().builder_options_help(), ablation]

    @classmethod
    def builder_needs_model(cls, options: dict[str, Any] | None = None) -> bool:
        """Sampling the target model (sample-and-judge, the default) or its saliency needs it loaded."""
        config = cls.parse_builder_options(options)
        samples = config.text_pairs and config.resolved_generator() == "sample-and-judge"
        return samples or (config.visual_pairs and config.localizer == "saliency")

    def build_pairs(self, context: Any) -> list:
        """Curate MMedPO's pooled pairs (``mmedpo.curate``); ``context.options`` are curation options."""
        from mmedpo.curate import build_mmedpo_pairs

        return build_mmedpo_pairs(context, self.parse_builder_options(context.options))
