"""Supervised fine-tuning: the chosen (reference) response's negative log-likelihood.

The one definition of SFT in the harness: the registered ``sft`` method (``harness train --method sft``),
``harness sft`` and the tiny model's training all use this class, through the shared training core
(``train_sft`` below calls ``harness.training.train_preference``). The paper's protocol trains every
preference method from an SFT model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.curation.preferences import PreferencePair
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


@dataclass
class SFTRecord:
    """One supervised example; ``image`` is a file path (absolute, or relative to ``image_root``)."""

    image: str
    prompt: str
    response: str


def records_to_pairs(records: list[SFTRecord]) -> list[PreferencePair]:
    return [PreferencePair(id=str(i), image=r.image, prompt=r.prompt, chosen=r.response, rejected="",
                           kind="sft", source="sft") for i, r in enumerate(records)]


def train_sft(model: Any, records: list[SFTRecord], output_dir: Path, config: Any = None,
              *, image_root: Path | None = None, resume: bool = False) -> Path:
    """Fine-tune on ``records`` through the shared core (``config``: a ``harness.training.TrainConfig``);
    returns the saved full-model folder (LoRA merged), loadable by ``load_hf_model``."""
    from harness.training.loop import train_preference

    result = train_preference(model, SFT(), records_to_pairs(records), image_root, output_dir, config,
                              resume=resume)
    if result.model_path is None:
        return Path(output_dir) / "model"
    return result.model_path
